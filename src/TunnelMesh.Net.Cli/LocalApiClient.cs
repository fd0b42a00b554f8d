using System.Net.Sockets;
using System.Text.Json;

namespace TunnelMesh.Net.Cli;

/// <summary>
/// Talks to the node that <c>tunnelmesh join</c> runs, over its local API: HTTP on the Unix socket
/// <c>&lt;state-dir&gt;/tunnelmesh.sock</c> (mode 0600, so only its owner can ask).
/// </summary>
internal static class LocalApiClient
{
    /// <summary>The socket's file name inside the state directory.</summary>
    public const string SocketName = "tunnelmesh.sock";

    public static string SocketPath(string stateDirectory) => Path.Combine(stateDirectory, SocketName);

    public static HttpClient Create(string stateDirectory, TimeSpan timeout)
    {
        string path = SocketPath(stateDirectory);
        if (!File.Exists(path))
        {
            throw new CliException($"no node is running with state directory {stateDirectory} (no {SocketName} there; start one with 'tunnelmesh join')");
        }

        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    throw new CliException($"the node's local API at {path} does not answer ({e.SocketErrorCode}); is 'tunnelmesh join' still running?");
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://localhost/"), Timeout = timeout };
    }

    public static async Task<JsonElement> GetAsync(string stateDirectory, string path, TimeSpan timeout, CancellationToken ct)
    {
        using var http = Create(stateDirectory, timeout);
        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new CliException(await TunnelMeshCli.ProblemAsync(response, ct).ConfigureAwait(false));
        }

        return await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<JsonElement>(response.Content, ct).ConfigureAwait(false);
    }
}
