using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using TunnelMesh.Net.EndToEnd;

// tunnelmesh-e2e: see BenchOptions.Usage. Roles: run (default; starts the other two), server, client.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (UsageException ex)
{
    if (ex.Message.Length > 0)
    {
        Console.Error.WriteLine($"tunnelmesh-e2e: {ex.Message}");
    }

    Console.Error.WriteLine(BenchOptions.Usage);
    return ex.Message.Length > 0 ? 2 : 0;
}

using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(options.TimeoutSeconds));
using var interrupted = new CancellationTokenSource();
using var cancel = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, interrupted.Token);
void Interrupt(PosixSignalContext context)
{
    context.Cancel = true;
    interrupted.Cancel();
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
string who = options.Role == "run" ? "tunnelmesh-e2e" : $"tunnelmesh-e2e {options.Role}";
try
{
    switch (options.Role)
    {
        case "server":
        {
            var bind = options.ServerAddress ?? IPAddress.Loopback;
            var report = await ServerRole.RunAsync(options, bind, Math.Max(options.UdpPort, 0), cancel.Token);
            Console.Out.WriteLine("RESULT " + JsonSerializer.Serialize(report, Json.Options));
            return 0;
        }

        case "client":
        {
            var serverAddress = options.ServerAddress ?? IPAddress.Loopback;
            var bind = options.ClientAddress ?? IPAddress.Any;
            var server = new IPEndPoint(serverAddress, options.Transport == TcpCarrier.Mesh ? options.PeerUdpPort : options.Port);
            if (server.Port == 0)
            {
                throw new UsageException("the client needs --peer-udp-port (the 'run' role passes it)");
            }

            var report = await ClientRole.RunAsync(options, bind, server, cancel.Token);
            Console.Out.WriteLine("RESULT " + JsonSerializer.Serialize(report, Json.Options));
            return 0;
        }

        default:
            return await Orchestrator.RunAsync(options, cancel.Token);
    }
}
catch (OperationCanceledException) when (timeout.IsCancellationRequested)
{
    Console.Error.WriteLine($"{who}: timed out after {options.TimeoutSeconds} s");
    return 3;
}
catch (OperationCanceledException) when (interrupted.IsCancellationRequested)
{
    Console.Error.WriteLine($"{who}: interrupted");
    return 130;
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"{who}: {ex.Message}");
    return 2;
}
catch (EnvironmentException ex)
{
    Console.Error.WriteLine($"{who}: {ex.Message}");
    return 4;
}
catch (Exception ex) when (ex is BenchFailedException or IOException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException or TunnelMesh.Net.MeshConfigurationException or FormatException)
{
    Console.Error.WriteLine($"{who}: {ex.GetType().Name}: {ex.Message}");
    return 1;
}
