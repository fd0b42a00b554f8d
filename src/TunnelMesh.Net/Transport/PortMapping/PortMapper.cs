using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Transport.PortMapping;

/// <summary>Settings of a <see cref="PortMapper"/>.</summary>
internal sealed class PortMapperOptions
{
    /// <summary>The UDP port to map (the node's WireGuard port).</summary>
    public required int InternalPort { get; init; }

    /// <summary>Finds the gateway to ask (default: the host's IPv4 default gateway).</summary>
    public Func<IPAddress?> FindGateway { get; init; } = DefaultGateway.Find;

    /// <summary>Makes the IPv4 sockets the requests go out on: UDP (PCP, NAT-PMP, SSDP) and TCP (UPnP's HTTP). Tests make them inside a network namespace.</summary>
    public Func<SocketType, Socket> CreateSocket { get; init; } = static type =>
        new Socket(AddressFamily.InterNetwork, type, type == SocketType.Stream ? ProtocolType.Tcp : ProtocolType.Udp);

    /// <summary>Whether UPnP IGD is tried when neither PCP nor NAT-PMP answers.</summary>
    public bool EnableUpnp { get; init; } = true;

    /// <summary>This host's address toward the gateway; learned from the route when null (tests in a namespace set it).</summary>
    public IPAddress? ClientAddress { get; init; }

    /// <summary>Whether a mapping is worth asking for now (the node: STUN shows it is behind a NAT). Checked before each attempt.</summary>
    public Func<bool> ShouldMap { get; init; } = static () => true;

    /// <summary>The lifetime asked for. RFC 6886 recommends 2 hours; the gateway may grant less.</summary>
    public TimeSpan Lifetime { get; init; } = TimeSpan.FromHours(2);

    /// <summary>The wait after a failed attempt, doubled after each further failure up to <see cref="RetryMax"/>.</summary>
    public TimeSpan RetryFirst { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The longest wait between failed attempts.</summary>
    public TimeSpan RetryMax { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often <see cref="ShouldMap"/> is looked at again while it says no (or sooner on <see cref="PortMapper.Wake"/>).</summary>
    public TimeSpan GateInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the delete on dispose may take in all.</summary>
    public TimeSpan DeleteTimeout { get; init; } = TimeSpan.FromSeconds(2);

    public required DropCounters Drops { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Called (on the mapper's loop) with the new external endpoint when it changes; null when the mapping is gone.</summary>
    public Action<IPEndPoint?>? Changed { get; init; }
}

/// <summary>
/// Keeps a port mapping for the node's WireGuard UDP port on the gateway: asks for it (PCP, else
/// NAT-PMP, else UPnP IGD; <see cref="PortMappingClient"/>), renews it at half its lifetime, asks again at once
/// when the gateway shows it lost its state or <see cref="Wake"/> is called, backs off after
/// failures (1 min doubling to 30 min), and deletes it on dispose.
/// </summary>
internal sealed partial class PortMapper : IAsyncDisposable
{
    private static readonly TimeSpan MinRenew = TimeSpan.FromSeconds(5);

    private readonly PortMapperOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0, 1);
    private PortMappingClient? _client;
    private PortMappingLease? _lease;
    private string? _lastError;
    private Task? _loop;
    private int _disposed;
    private long _attempts;

    public PortMapper(PortMapperOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.InternalPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.InternalPort, 65535);
        _options = options;
        _logger = logger;
    }

    /// <summary>The mapping held now, or null.</summary>
    public PortMappingLease? Current => Volatile.Read(ref _lease);

    /// <summary>Why the last attempt got no mapping (one line), or null.</summary>
    public string? LastError => Volatile.Read(ref _lastError);

    /// <summary>Attempts made (first requests and renewals).</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    /// <summary>Starts the loop.</summary>
    public void Start() => _loop ??= RunAsync(_stop.Token);

    /// <summary>Ends the current wait: the mapper looks at the gate and asks the gateway again now (a network change, a new STUN answer).</summary>
    public void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>A one-off probe of the default gateway (PCP ANNOUNCE, then NAT-PMP), mapping nothing: what <c>netcheck</c> reports when no mapping is held.</summary>
    public static async Task<MeshPortMappingProtocol> ProbeAsync(PortMapperOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.FindGateway() is not { } gateway)
        {
            return MeshPortMappingProtocol.None;
        }

        using var client = new PortMappingClient(options.CreateSocket(SocketType.Dgram), gateway, options.ClientAddress, options.Drops, options.Time, options.EnableUpnp ? options.CreateSocket : null);
        try
        {
            return await client.ProbeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or PortMappingRefusedException)
        {
            return MeshPortMappingProtocol.None;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_client is { } client && Current is { } lease)
        {
            using var timeout = new CancellationTokenSource(_options.DeleteTimeout, _options.Time);
            try
            {
                bool deleted = await client.DeleteAsync((ushort)_options.InternalPort, lease, timeout.Token).ConfigureAwait(false);
                Log.Deleted(_logger, lease.Protocol, lease.External, deleted);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or PortMappingRefusedException)
            {
                Log.Deleted(_logger, lease.Protocol, lease.External, false);
            }
        }

        Volatile.Write(ref _lease, null);
        _client?.Dispose();
        _stop.Dispose();
        _wake.Dispose();
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        var retry = _options.RetryFirst;
        IPAddress? gateway = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan wait;
            long from = 0; // when the wait began: taken before anything observable (Publish), so a clock
                           // that moves while this loop gets to WaitAsync is counted against the wait
            try
            {
                if (!_options.ShouldMap())
                {
                    await WaitAsync(_options.GateInterval, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var found = _options.FindGateway();
                if (found is null)
                {
                    from = _options.Time.GetTimestamp();
                    Fail("no IPv4 default gateway");
                    wait = Backoff(ref retry);
                }
                else
                {
                    if (!found.Equals(gateway) || _client is null)
                    {
                        _client?.Dispose();
                        _client = new PortMappingClient(_options.CreateSocket(SocketType.Dgram), found, _options.ClientAddress, _options.Drops, _options.Time, _options.EnableUpnp ? _options.CreateSocket : null);
                        gateway = found;
                        Publish(null);
                    }

                    var previous = _client.StateLost ? null : Current;
                    _client.StateLost = false;
                    Interlocked.Increment(ref _attempts);
                    var lease = await _client.MapAsync((ushort)_options.InternalPort, _options.Lifetime, previous, cancellationToken).ConfigureAwait(false);
                    from = _options.Time.GetTimestamp();
                    if (lease is null)
                    {
                        Fail($"the gateway {found} answered neither PCP, NAT-PMP nor UPnP IGD");
                        wait = Backoff(ref retry);
                    }
                    else
                    {
                        Volatile.Write(ref _lastError, null);
                        Publish(lease);
                        retry = _options.RetryFirst;
                        wait = lease.Lifetime / 2 < MinRenew ? MinRenew : lease.Lifetime / 2;
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is SocketException or PortMappingRefusedException)
            {
                from = _options.Time.GetTimestamp();
                Fail(ex.Message);
                wait = Backoff(ref retry);
            }

            try
            {
                var left = wait - _options.Time.GetElapsedTime(from);
                await WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private TimeSpan Backoff(ref TimeSpan retry)
    {
        Publish(null);
        var wait = retry;
        retry = retry * 2 > _options.RetryMax ? _options.RetryMax : retry * 2;
        return wait;
    }

    private void Fail(string reason)
    {
        if (Volatile.Read(ref _lastError) != reason)
        {
            Log.Failed(_logger, reason);
        }

        Volatile.Write(ref _lastError, reason);
    }

    private void Publish(PortMappingLease? lease)
    {
        var previous = Interlocked.Exchange(ref _lease, lease);
        if (Equals(previous?.External, lease?.External))
        {
            return;
        }

        if (lease is not null)
        {
            Log.Mapped(_logger, lease.Protocol, lease.External, _options.InternalPort, (int)lease.Lifetime.TotalSeconds);
        }

        _options.Changed?.Invoke(lease?.External);
    }

    private async Task WaitAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(delay, _options.Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await _wake.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "Port mapping ({Protocol}): {External} forwards to UDP port {InternalPort} for {Lifetime} s")]
        public static partial void Mapped(ILogger logger, MeshPortMappingProtocol protocol, IPEndPoint external, int internalPort, int lifetime);

        [LoggerMessage(EventId = 1301, Level = LogLevel.Debug, Message = "No port mapping: {Reason}")]
        public static partial void Failed(ILogger logger, string reason);

        [LoggerMessage(EventId = 1302, Level = LogLevel.Debug, Message = "Port mapping ({Protocol}) {External} deleted: {Confirmed}")]
        public static partial void Deleted(ILogger logger, MeshPortMappingProtocol protocol, IPEndPoint external, bool confirmed);
    }
}
