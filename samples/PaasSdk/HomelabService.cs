using System.Text;
using TunnelMesh.Net;

namespace PaasSdk;

/// <summary>
/// The customer's service: a tiny HTTP/1.1 responder on a port of the homelab node's mesh address
/// (<see cref="MeshNode.ListenAsync(int, CancellationToken)"/>; no TUN device, nothing on the host's
/// own ports). It authorises each connection by who is on the other end (<see cref="MeshNode.WhoIs(MeshTcpStream)"/>):
/// only a peer tagged <c>tag:paas</c> gets an answer, anyone else in the mesh gets 403.
/// </summary>
public sealed class HomelabService
{
    private const int MaxHeadBytes = 8 * 1024;
    private readonly MeshNode _node;
    private readonly string _owner;
    private readonly Action<string> _print;

    /// <param name="node">The homelab's node.</param>
    /// <param name="owner">Whose machine it is (for the answer).</param>
    /// <param name="print">Where the service says what it did.</param>
    public HomelabService(MeshNode node, string owner, Action<string> print)
    {
        _node = node;
        _owner = owner;
        _print = print;
    }

    /// <summary>The tag a caller must carry.</summary>
    public const string AllowedTag = "tag:paas";

    /// <summary>Requests answered (any status).</summary>
    public int Answered { get; private set; }

    /// <summary>Accepts and answers connections one at a time until the listener is disposed or <paramref name="ct"/> is cancelled.</summary>
    public async Task ServeAsync(MeshTcpListener listener, CancellationToken ct)
    {
        while (true)
        {
            MeshTcpStream connection;
            try
            {
                connection = await listener.AcceptAsync(ct);
            }
            catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException)
            {
                return;
            }

            await using (connection)
            {
                try
                {
                    await AnswerAsync(connection, ct);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException)
                {
                    _print($"connection from {connection.RemoteEndPoint} failed: {e.Message}");
                }
            }
        }
    }

    private async Task AnswerAsync(MeshTcpStream connection, CancellationToken ct)
    {
        // Who is calling: the peer whose WireGuard key the packets came with (cannot be forged by choosing a source address).
        MeshPeerIdentity? caller = _node.WhoIs(connection);
        string? requestLine = await ReadRequestLineAsync(connection, ct);
        string self = _node.GetStatus().Self.Name ?? "homelab";
        string who = caller is null ? "an unknown peer" : $"{caller.Name} ({string.Join(", ", caller.Tags)})";

        (int status, string body) = requestLine switch
        {
            null => (400, "bad request\n"),
            _ when caller is null || !caller.HasTag(AllowedTag) => (403, $"only {AllowedTag} may call {self}; you are {who}\n"),
            _ when !requestLine.StartsWith("GET /status ", StringComparison.Ordinal) => (404, "try GET /status\n"),
            _ => (200, $"hello from {self}, {_owner}'s homelab machine; you are {caller.Name} [{string.Join(", ", caller.Tags)}]\n"),
        };

        byte[] content = Encoding.UTF8.GetBytes(body);
        string reason = status switch { 200 => "OK", 403 => "Forbidden", 404 => "Not Found", _ => "Bad Request" };
        byte[] head = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {content.Length}\r\nConnection: close\r\n\r\n");
        await connection.WriteAsync(head, ct);
        await connection.WriteAsync(content, ct);
        await connection.ShutdownSendAsync(ct);
        Answered++;
        _print($"{requestLine ?? "(no request)"} from {who} -> {status}");
    }

    /// <summary>Reads the request head (up to the blank line, at most 8 KiB) and returns its first line; null if it is not one.</summary>
    private static async Task<string?> ReadRequestLineAsync(MeshTcpStream connection, CancellationToken ct)
    {
        var head = new byte[MaxHeadBytes];
        int length = 0;
        while (length < head.Length)
        {
            int n = await connection.ReadAsync(head.AsMemory(length), ct);
            if (n == 0)
            {
                return null;
            }

            length += n;
            int end = head.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                int firstLine = head.AsSpan(0, end).IndexOf("\r\n"u8);
                return Encoding.ASCII.GetString(head, 0, firstLine >= 0 ? firstLine : end);
            }
        }

        return null;
    }
}
