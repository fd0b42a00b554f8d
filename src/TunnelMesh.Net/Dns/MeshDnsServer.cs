using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Makaretu.Dns;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Wire.Dns;

namespace TunnelMesh.Net.Dns;

/// <summary>Settings of a node's <see cref="MeshDnsServer"/>.</summary>
internal sealed class MeshDnsServerOptions
{
    /// <summary>Where names outside the mesh are forwarded (over UDP from the host's network); null refuses them.</summary>
    public IPEndPoint? Upstream { get; init; }

    /// <summary>How long to wait for the upstream's answer per attempt. Default 2 s.</summary>
    public TimeSpan UpstreamTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How many times a query is sent upstream before the client gets SERVFAIL. Default 2.</summary>
    public int UpstreamAttempts { get; init; } = 2;

    /// <summary>Queries being forwarded at once; beyond that, queries to forward are dropped and counted. Default 64.</summary>
    public int MaxConcurrentForwards { get; init; } = 64;

    /// <summary>TCP connections served at once; beyond that, new ones are closed at once and counted. Default 32.</summary>
    public int MaxTcpConnections { get; init; } = 32;

    /// <summary>A TCP connection idle this long (no complete query) is closed. Default 10 s.</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Reverse zones the server is authoritative for: PTR queries for addresses inside them that no
    /// mesh node has get NXDOMAIN instead of being forwarded or refused. Default the default mesh
    /// prefix 100.64.0.0/10. (Addresses of mesh nodes are answered wherever they are.)
    /// </summary>
    public IReadOnlyList<IPNetwork> ReverseZones { get; init; } = [new IPNetwork(IPAddress.Parse("100.64.0.0"), 10)];
}

/// <summary>
/// The node's DNS server on its mesh address, port 53 over UDP and TCP (RFC 1035, RFC 7766 length
/// framing, several queries per connection). Authoritative for the mesh names of
/// <see cref="MeshNameTable"/> (<c>name.suffix</c>: A and AAAA; their addresses: PTR under
/// in-addr.arpa and ip6.arpa); other names are forwarded to <see cref="MeshDnsServerOptions.Upstream"/>
/// or refused.
/// </summary>
/// <remarks>
/// <para>Mesh answers carry AA, copy RD, never set RA, and have a TTL of <see cref="RecordTtl"/>
/// (60 s: a rename or a new node shows within a minute even in caches that honour it). An unknown
/// name under the suffix gets NXDOMAIN, a known name without records of the asked type NODATA
/// (NOERROR, no answer); both carry the zone's SOA in the authority section, whose minimum (the
/// negative-caching TTL, RFC 2308) is 60 s as well.</para>
/// <para>Over UDP an answer is at most 512 bytes, or the EDNS(0) payload size the query offers
/// (capped at 4096); a longer one goes out with TC set and only the question, so the client
/// retries over TCP. Malformed queries get FORMERR (counted in <see cref="FormatErrors"/>), opcodes
/// other than QUERY NOTIMP, EDNS versions other than 0 BADVERS. Messages that cannot even be answered
/// are dropped and counted by reason: <see cref="DropReason.DnsNoHeader"/> (under 12 bytes),
/// <see cref="DropReason.DnsNotAQuery"/> (a response), <see cref="DropReason.DnsDropped"/> (the
/// server's limits).</para>
/// <para>Messages are read and written with Makaretu.Dns (<see cref="Message"/> and its records).
/// Untrusted bytes reach it only through <see cref="DnsWire.TryRead"/>: a query over the limits of
/// <see cref="DnsReadLimits.Query"/> (4096 bytes, one question, 16 records), or one that <see cref="DnsMessageShape"/>
/// finds malformed (the checks Makaretu.Dns lacks: name length, label types, pointer direction,
/// UTF-8 labels, trailing bytes), is answered FORMERR without Makaretu.Dns reading it, and whatever
/// Makaretu.Dns throws on the rest is caught there and answered FORMERR too. The header (id,
/// flags, opcode) is peeked by <see cref="DnsHeader"/> so that FORMERR goes back with the right id,
/// and because Makaretu.Dns reads the OPT record's extended-rcode bits as part of the opcode.</para>
/// <para>Forwarded queries go to the upstream from a fresh UDP socket of the host with a random
/// id; the upstream's answer is relayed as it is (its RA included) with the client's id back. No
/// answer within the timeout and attempts gives SERVFAIL.</para>
/// </remarks>
internal sealed partial class MeshDnsServer : IAsyncDisposable
{
    /// <summary>The DNS port.</summary>
    public const int Port = 53;

    /// <summary>The TTL of mesh records and the SOA's negative-caching TTL, in seconds.</summary>
    public const uint RecordTtl = 60;

    /// <summary>The EDNS(0) payload size the server offers and the most it sends over UDP.</summary>
    private const int MaxUdpPayload = 4096;

    /// <summary>The largest UDP answer without EDNS(0) (RFC 1035 §4.2.1).</summary>
    private const int ClassicUdpPayload = 512;

    /// <summary>The largest message (TCP framing has a 16-bit length).</summary>
    private const int MaxMessageLength = 65535;

    /// <summary>The TC bit of the header's flag word.</summary>
    private const ushort TcFlag = 0x0200;

    /// <summary>IXFR (RFC 1995), which Makaretu.Dns's <see cref="DnsType"/> does not name.</summary>
    private const DnsType TypeIxfr = (DnsType)251;

    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(RecordTtl);

    private readonly NetStack _stack;
    private readonly MeshNameTable _names;
    private readonly MeshDnsServerOptions _options;
    private readonly DropCounters _drops;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _forwardSlots;
    private readonly SemaphoreSlim _tcpSlots;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, byte> _inflight = new();
    private MeshUdpSocket? _udp;
    private MeshTcpListener? _tcp;
    private Task? _udpLoop;
    private Task? _tcpLoop;
    private uint _serial = 1;
    private long _formatErrors;
    private int _disposed;

    public MeshDnsServer(NetStack stack, MeshNameTable names, MeshDnsServerOptions options, DropCounters drops, ILogger logger)
    {
        _stack = stack;
        _names = names;
        _options = options;
        _drops = drops;
        _logger = logger;
        _forwardSlots = new SemaphoreSlim(options.MaxConcurrentForwards, options.MaxConcurrentForwards);
        _tcpSlots = new SemaphoreSlim(options.MaxTcpConnections, options.MaxTcpConnections);
        _names.Changed += OnNamesChanged;
    }

    /// <summary>The SOA serial: starts at 1, one more on every change of the name table.</summary>
    public uint Serial => Volatile.Read(ref _serial);

    /// <summary>Queries answered FORMERR since start (malformed, refused by <see cref="DnsMessageShape"/>, or not one question).</summary>
    public long FormatErrors => Interlocked.Read(ref _formatErrors);

    /// <summary>Binds UDP and TCP port 53 on the stack and starts serving.</summary>
    /// <exception cref="SocketException">Port 53 is already in use on the node.</exception>
    public async Task StartAsync()
    {
        _udp = _stack.BindUdp(Port);
        try
        {
            var core = _stack.Tcp.Listen(Port, new MeshTcpListenerOptions { Backlog = _options.MaxTcpConnections });
            _tcp = new MeshTcpListener(core, new IPEndPoint(_udp.LocalEndPoint.Address, Port));
        }
        catch
        {
            await _udp.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        _udpLoop = UdpLoopAsync(_udp, _stopping.Token);
        _tcpLoop = TcpLoopAsync(_tcp, _stopping.Token);
        Log.Started(_logger, _udp.LocalEndPoint.Address, _options.Upstream is null ? "none (refused)" : _options.Upstream.ToString());
    }

    /// <summary>Stops serving: closes both ports, ends connections and forwards in flight. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _names.Changed -= OnNamesChanged;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_udp is not null)
        {
            await _udp.DisposeAsync().ConfigureAwait(false);
        }

        if (_tcp is not null)
        {
            await _tcp.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var task in (Task?[])[_udpLoop, _tcpLoop, .. _inflight.Keys])
        {
            if (task is not null)
            {
                await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        _stopping.Dispose();
    }

    /// <summary>
    /// Answers one query: the response's bytes, or null when the message is dropped (and counted by
    /// reason). Local answers complete synchronously; forwarded ones when the upstream answers or times out.
    /// </summary>
    /// <param name="query">The query message.</param>
    /// <param name="overUdp">Whether the answer goes back over UDP (size limits, truncation).</param>
    /// <param name="ct">Cancels a forward.</param>
    internal ValueTask<byte[]?> AnswerAsync(ReadOnlyMemory<byte> query, bool overUdp, CancellationToken ct)
    {
        if (!DnsHeader.TryRead(query.Span, out var header))
        {
            _drops.Increment(DropReason.DnsNoHeader);
            return new ValueTask<byte[]?>((byte[]?)null);
        }

        if (header.IsResponse)
        {
            _drops.Increment(DropReason.DnsNotAQuery);
            return new ValueTask<byte[]?>((byte[]?)null);
        }

        if (!DnsWire.TryRead(query, DnsReadLimits.Query, out var message, out var shapeError))
        {
            Interlocked.Increment(ref _formatErrors);
            Log.Malformed(_logger, query.Length, shapeError);
            return new ValueTask<byte[]?>(Encode(Reply(header, null, MessageStatus.FormatError, authoritative: false), overUdp, ClassicUdpPayload));
        }

        if (header.Opcode != 0)
        {
            return new ValueTask<byte[]?>(Encode(Reply(header, message, MessageStatus.NotImplemented, authoritative: false), overUdp, ClassicUdpPayload));
        }

        int optCount = 0;
        OPTRecord? opt = null;
        foreach (var r in message.AdditionalRecords)
        {
            if (r is OPTRecord o)
            {
                optCount++;
                opt = o;
            }
        }

        if (message.Questions.Count != 1 || optCount > 1 || (opt is not null && opt.Name.Labels.Count != 0))
        {
            Interlocked.Increment(ref _formatErrors);
            return new ValueTask<byte[]?>(Encode(Reply(header, null, MessageStatus.FormatError, authoritative: false), overUdp, ClassicUdpPayload));
        }

        int udpLimit = opt is null ? ClassicUdpPayload : Math.Clamp((int)opt.RequestorPayloadSize, ClassicUdpPayload, MaxUdpPayload);
        if (opt is not null && opt.Version != 0)
        {
            // BADVERS (16) is an extended rcode: its upper 8 bits go in the OPT record, the lower 4 (0) in the header.
            var badvers = Reply(header, message, MessageStatus.BadVersion, authoritative: false);
            badvers.AdditionalRecords.Add(ServerOpt((int)MessageStatus.BadVersion >> 4));
            return new ValueTask<byte[]?>(Encode(badvers, overUdp, udpLimit));
        }

        var response = TryAnswerLocally(header, message);
        if (response is not null)
        {
            if (opt is not null)
            {
                response.AdditionalRecords.Add(ServerOpt(0));
            }

            return new ValueTask<byte[]?>(Encode(response, overUdp, udpLimit));
        }

        if (_options.Upstream is null)
        {
            var refused = Reply(header, message, MessageStatus.Refused, authoritative: false);
            if (opt is not null)
            {
                refused.AdditionalRecords.Add(ServerOpt(0));
            }

            return new ValueTask<byte[]?>(Encode(refused, overUdp, udpLimit));
        }

        return ForwardAsync(query, header, message, opt is not null, overUdp, udpLimit, ct);
    }

    /// <summary>The answer from the mesh's names, or null when the name is not the mesh's to answer.</summary>
    internal Message? TryAnswerLocally(DnsHeader header, Message query)
    {
        var q = query.Questions[0];
        foreach (string label in q.Name.Labels)
        {
            // A label holding a dot is no mesh name; it is also one that Makaretu.Dns's writer, which
            // keys compression by labels joined with dots, could confuse with two labels.
            if (label.Contains('.', StringComparison.Ordinal))
            {
                return null;
            }
        }

        string name = q.Name.ToString().ToLowerInvariant();
        if (_names.IsInMesh(name))
        {
            string zone = _names.Suffix;
            if (q.Class is not (DnsClass.IN or DnsClass.ANY) || q.Type is DnsType.AXFR or TypeIxfr)
            {
                return Reply(header, query, MessageStatus.Refused, authoritative: false);
            }

            if (name == zone)
            {
                var apex = Reply(header, query, MessageStatus.NoError, authoritative: true);
                (q.Type is DnsType.SOA or DnsType.ANY ? apex.Answers : apex.AuthorityRecords).Add(Soa(zone));
                return apex;
            }

            if (!_names.TryResolve(name, out var addresses))
            {
                var nx = Reply(header, query, MessageStatus.NameError, authoritative: true);
                nx.AuthorityRecords.Add(Soa(zone));
                return nx;
            }

            var answer = Reply(header, query, MessageStatus.NoError, authoritative: true);
            foreach (var address in addresses)
            {
                bool v4 = address.AddressFamily == AddressFamily.InterNetwork;
                if (q.Type == DnsType.ANY || q.Type == (v4 ? DnsType.A : DnsType.AAAA))
                {
                    AddressRecord record = v4 ? new ARecord() : new AAAARecord();
                    record.Name = q.Name;
                    record.Class = DnsClass.IN;
                    record.TTL = Ttl;
                    record.Address = address;
                    answer.Answers.Add(record);
                }
            }

            if (answer.Answers.Count == 0)
            {
                answer.AuthorityRecords.Add(Soa(zone));
            }

            return answer;
        }

        if (!DnsReverseName.TryParse(name, out var reversed))
        {
            return null;
        }

        string? reverseZone = ReverseZoneOf(reversed);
        if (_names.TryReverse(reversed, out string fqdn))
        {
            var ptr = Reply(header, query, MessageStatus.NoError, authoritative: true);
            if (q.Type is DnsType.PTR or DnsType.ANY)
            {
                ptr.Answers.Add(new PTRRecord { Name = q.Name, Class = DnsClass.IN, TTL = Ttl, DomainName = fqdn });
            }
            else
            {
                ptr.AuthorityRecords.Add(Soa(reverseZone ?? (reversed.AddressFamily == AddressFamily.InterNetwork ? "in-addr.arpa" : "ip6.arpa")));
            }

            return ptr;
        }

        if (reverseZone is not null)
        {
            var nx = Reply(header, query, MessageStatus.NameError, authoritative: true);
            nx.AuthorityRecords.Add(Soa(reverseZone));
            return nx;
        }

        return null;
    }

    private string? ReverseZoneOf(IPAddress address)
    {
        foreach (var network in _options.ReverseZones)
        {
            if (network.Contains(address))
            {
                // The zone name: the whole octets (nibbles for IPv6) of the prefix, reversed.
                string full = DnsReverseName.For(network.BaseAddress);
                int labels = address.AddressFamily == AddressFamily.InterNetwork ? 4 - (network.PrefixLength / 8) : 32 - (network.PrefixLength / 4);
                int at = 0;
                for (int i = 0; i < labels; i++)
                {
                    at = full.IndexOf('.', at) + 1;
                }

                return full[at..];
            }
        }

        return null;
    }

    private SOARecord Soa(string zone) => new()
    {
        Name = zone,
        Class = DnsClass.IN,
        TTL = Ttl,
        PrimaryName = zone.EndsWith("arpa", StringComparison.Ordinal) ? _names.Suffix : zone,
        Mailbox = "hostmaster." + _names.Suffix,
        SerialNumber = Serial,
        Refresh = TimeSpan.FromSeconds(3600),
        Retry = TimeSpan.FromSeconds(600),
        Expire = TimeSpan.FromSeconds(86400),
        Minimum = Ttl,
    };

    /// <summary>The server's OPT record. Makaretu.Dns calls the upper 8 bits of the extended rcode <c>Opcode8</c>.</summary>
    private static OPTRecord ServerOpt(int extendedRcode) => new() { RequestorPayloadSize = MaxUdpPayload, Opcode8 = (byte)extendedRcode };

    private static Message Reply(DnsHeader query, Message? message, MessageStatus status, bool authoritative, bool recursionAvailable = false)
    {
        // Opcode is set before any OPT record is added: Makaretu.Dns's setter would clear that record's extended-rcode bits.
        var reply = new Message
        {
            Id = query.Id,
            QR = true,
            Opcode = (MessageOperation)query.Opcode,
            RD = query.RecursionDesired,
            AA = authoritative,
            RA = recursionAvailable,
            Status = status,
        };
        if (message is not null)
        {
            reply.Questions.AddRange(message.Questions);
        }

        return reply;
    }

    /// <summary>The response's bytes; over UDP, when longer than <paramref name="udpLimit"/>, a truncated one (TC, question and OPT only).</summary>
    private static byte[] Encode(Message response, bool overUdp, int udpLimit)
    {
        var bytes = DnsWire.ToArray(response);
        if (!overUdp || bytes.Length <= udpLimit)
        {
            return bytes;
        }

        response.TC = true;
        response.Answers.Clear();
        response.AuthorityRecords.Clear();
        response.AdditionalRecords.RemoveAll(static r => r is not OPTRecord);
        return DnsWire.ToArray(response);
    }

    private async ValueTask<byte[]?> ForwardAsync(ReadOnlyMemory<byte> query, DnsHeader header, Message message, bool edns, bool overUdp, int udpLimit, CancellationToken ct)
    {
        if (!_forwardSlots.Wait(0, CancellationToken.None))
        {
            _drops.Increment(DropReason.DnsDropped);
            return null;
        }

        try
        {
            var upstream = _options.Upstream!;
            byte[] request = query.ToArray();
            ushort id = (ushort)RandomNumberGenerator.GetInt32(65536);
            BinaryPrimitives.WriteUInt16BigEndian(request, id);
            using var socket = new Socket(upstream.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            await socket.ConnectAsync(upstream, ct).ConfigureAwait(false); // a connected socket takes datagrams from the upstream only
            var buffer = new byte[MaxMessageLength];
            for (int attempt = 0; attempt < _options.UpstreamAttempts; attempt++)
            {
                await socket.SendAsync(request, SocketFlags.None, ct).ConfigureAwait(false);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(_options.UpstreamTimeout);
                try
                {
                    while (true)
                    {
                        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                        if (DnsHeader.TryRead(buffer.AsSpan(0, n), out var answer) && answer.IsResponse && answer.Id == id)
                        {
                            BinaryPrimitives.WriteUInt16BigEndian(buffer, header.Id);
                            return RelayAnswer(buffer.AsSpan(0, n), answer, header, message, overUdp, udpLimit);
                        }
                    }
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    // This attempt timed out; the next one sends again.
                }
                catch (SocketException ex)
                {
                    Log.ForwardFailed(_logger, upstream, ex.SocketErrorCode);
                    break; // ICMP unreachable and the like: the upstream is not there
                }
            }

            Log.ForwardTimedOut(_logger, upstream);
            var fail = Reply(header, message, MessageStatus.ServerFailure, authoritative: false, recursionAvailable: true);
            if (edns)
            {
                fail.AdditionalRecords.Add(ServerOpt(0));
            }

            return Encode(fail, overUdp, udpLimit);
        }
        finally
        {
            _forwardSlots.Release();
        }
    }

    /// <summary>The upstream's answer as it came (the client's id already in it), or, too long for the client's UDP, its flags and rcode with TC and the question only.</summary>
    private static byte[] RelayAnswer(ReadOnlySpan<byte> answer, DnsHeader upstream, DnsHeader client, Message query, bool overUdp, int udpLimit)
    {
        if (!overUdp || answer.Length <= udpLimit)
        {
            return answer.ToArray();
        }

        var truncated = new Message { Id = client.Id, QR = true };
        truncated.Questions.AddRange(query.Questions);
        var bytes = DnsWire.ToArray(truncated);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)(upstream.Flags | TcFlag)); // the upstream's flag word exactly, TC added
        return bytes;
    }

    private async Task UdpLoopAsync(MeshUdpSocket socket, CancellationToken ct)
    {
        var buffer = new byte[MaxMessageLength];
        while (!ct.IsCancellationRequested)
        {
            MeshUdpReceiveResult received;
            try
            {
                received = await socket.ReceiveFromAsync(buffer, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }

            try
            {
                var pending = AnswerAsync(buffer.AsMemory(0, received.ReceivedBytes), overUdp: true, ct);
                if (pending.IsCompleted)
                {
                    await SendUdpAsync(socket, pending.Result, received.RemoteEndPoint, ct).ConfigureAwait(false);
                }
                else
                {
                    // A forward: the loop goes on receiving; the query's bytes were copied before the first await.
                    Track(SendWhenAnsweredAsync(socket, pending, received.RemoteEndPoint, ct));
                }
            }
#pragma warning disable CA1031 // a query must never stop the server
            catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
            {
                _drops.Increment(DropReason.DnsDropped);
                Log.QueryFailed(_logger, ex);
            }
        }
    }

    private async Task SendWhenAnsweredAsync(MeshUdpSocket socket, ValueTask<byte[]?> pending, IPEndPoint client, CancellationToken ct)
    {
        try
        {
            await SendUdpAsync(socket, await pending.ConfigureAwait(false), client, ct).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // forwarding failures end in SERVFAIL or a counted drop, never in the loop
        catch (Exception ex) when (ex is not OperationCanceledException and not ObjectDisposedException)
#pragma warning restore CA1031
        {
            _drops.Increment(DropReason.DnsDropped);
            Log.QueryFailed(_logger, ex);
        }
    }

    private static async ValueTask SendUdpAsync(MeshUdpSocket socket, byte[]? response, IPEndPoint client, CancellationToken ct)
    {
        if (response is not null)
        {
            await socket.SendToAsync(response, client, ct).ConfigureAwait(false);
        }
    }

    private async Task TcpLoopAsync(MeshTcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            MeshTcpStream stream;
            try
            {
                stream = await listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }

            if (!_tcpSlots.Wait(0, CancellationToken.None))
            {
                _drops.Increment(DropReason.DnsDropped);
                stream.Abort();
                await stream.DisposeAsync().ConfigureAwait(false);
                continue;
            }

            Track(ServeConnectionAsync(stream, ct));
        }
    }

    private async Task ServeConnectionAsync(MeshTcpStream stream, CancellationToken ct)
    {
        try
        {
            await using (stream.ConfigureAwait(false))
            {
                var length = new byte[2];
                var buffer = new byte[MaxMessageLength + 2];
                while (true)
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    idle.CancelAfter(_options.TcpIdleTimeout);
                    if (!await ReadExactlyOrEndAsync(stream, length, idle.Token).ConfigureAwait(false))
                    {
                        return; // the client closed between queries
                    }

                    int n = BinaryPrimitives.ReadUInt16BigEndian(length);
                    if (n == 0)
                    {
                        _drops.Increment(DropReason.DnsNoHeader);
                        return;
                    }

                    if (!await ReadExactlyOrEndAsync(stream, buffer.AsMemory(0, n), idle.Token).ConfigureAwait(false))
                    {
                        _drops.Increment(DropReason.DnsDropped);
                        return;
                    }

                    byte[]? response = await AnswerAsync(buffer.AsMemory(0, n), overUdp: false, ct).ConfigureAwait(false);
                    if (response is null)
                    {
                        continue;
                    }

                    // One write per message (length and body together), as RFC 7766 §8 recommends.
                    BinaryPrimitives.WriteUInt16BigEndian(buffer, (ushort)response.Length);
                    response.CopyTo(buffer, 2);
                    await stream.WriteAsync(buffer.AsMemory(0, response.Length + 2), ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Idle timeout, reset by the client, or the server stopping: the connection ends.
        }
        finally
        {
            _tcpSlots.Release();
        }
    }

    private static async ValueTask<bool> ReadExactlyOrEndAsync(MeshTcpStream stream, Memory<byte> buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer[read..], ct).ConfigureAwait(false);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    private void Track(Task task)
    {
        _inflight.TryAdd(task, 0);
        _ = task.ContinueWith(static (t, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(t, out _), _inflight, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void OnNamesChanged() => Interlocked.Increment(ref _serial);

    private static partial class Log
    {
        [LoggerMessage(EventId = 1600, Level = LogLevel.Information, Message = "DNS server on {Address} port 53 (UDP and TCP), upstream {Upstream}")]
        public static partial void Started(ILogger logger, IPAddress address, string upstream);

        [LoggerMessage(EventId = 1601, Level = LogLevel.Debug, Message = "DNS forward to {Upstream} failed: {Error}")]
        public static partial void ForwardFailed(ILogger logger, IPEndPoint upstream, SocketError error);

        [LoggerMessage(EventId = 1602, Level = LogLevel.Debug, Message = "DNS forward to {Upstream} got no answer; SERVFAIL")]
        public static partial void ForwardTimedOut(ILogger logger, IPEndPoint upstream);

        [LoggerMessage(EventId = 1604, Level = LogLevel.Debug, Message = "Malformed DNS query of {Length} bytes ({Shape}); FORMERR")]
        public static partial void Malformed(ILogger logger, int length, DnsShapeError shape);

        [LoggerMessage(EventId = 1603, Level = LogLevel.Warning, Message = "Unexpected error while answering a DNS query; it was dropped")]
        public static partial void QueryFailed(ILogger logger, Exception exception);
    }
}
