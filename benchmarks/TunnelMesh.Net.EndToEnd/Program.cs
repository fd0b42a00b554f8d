using System.Net;
using System.Text.Json;
using TunnelMesh.Net.EndToEnd;

// tunnelmesh-e2e: see BenchOptions.Usage. Roles: run (default; starts the other two), server, client.
if (!BenchRun.TryParse("tunnelmesh-e2e", BenchOptions.Usage, () => BenchOptions.Parse(args), out BenchOptions? options, out int usageExit))
{
    return usageExit;
}

using var run = new BenchRun(TimeSpan.FromSeconds(options.TimeoutSeconds));
string who = options.Role == "run" ? "tunnelmesh-e2e" : $"tunnelmesh-e2e {options.Role}";
try
{
    switch (options.Role)
    {
        case "server":
        {
            var bind = options.ServerAddress ?? IPAddress.Loopback;
            var report = await ServerRole.RunAsync(options, bind, Math.Max(options.UdpPort, 0), run.Token);
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

            var report = await ClientRole.RunAsync(options, bind, server, run.Token);
            Console.Out.WriteLine("RESULT " + JsonSerializer.Serialize(report, Json.Options));
            return 0;
        }

        default:
            return await Orchestrator.RunAsync(options, run.Token);
    }
}
catch (OperationCanceledException) when (run.TimedOut)
{
    Console.Error.WriteLine($"{who}: timed out after {options.TimeoutSeconds} s");
    return 3;
}
catch (OperationCanceledException) when (run.Interrupted)
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
