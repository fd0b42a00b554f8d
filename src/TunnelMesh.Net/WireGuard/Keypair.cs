using System.Security.Cryptography;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// One session's transport keys: seals outgoing IP packets into transport messages and opens incoming
/// ones, in place in their <see cref="PacketBuffer"/>s, allocating nothing.
/// </summary>
/// <remarks>
/// Threading: <see cref="TrySeal"/> may be called from one sending thread at a time and
/// <see cref="TryOpen"/> from one receiving thread at a time; the two may run concurrently, because
/// each direction has its own <see cref="ChaCha20Poly1305"/> instance (an instance is not safe for
/// concurrent use) and the send counter is taken with <see cref="Interlocked"/>.
/// </remarks>
internal sealed class Keypair : IDisposable
{
    private const int HeaderSize = WireGuardSpec.TransportHeaderSize;
    private const int TagSize = WireGuardSpec.TagSize;

    private readonly ChaCha20Poly1305 _send;
    private readonly ChaCha20Poly1305 _receive;
    private readonly ReplayWindow _replay = new();
    private ulong _sendCounter;
    private int _disposed;

    /// <summary>Creates a keypair from the two 32-byte transport keys of a completed handshake.</summary>
    internal Keypair(ReadOnlySpan<byte> sendKey, ReadOnlySpan<byte> receiveKey, uint localIndex, uint remoteIndex, bool isInitiator, long createdTimestamp)
    {
        _send = new ChaCha20Poly1305(sendKey);
        _receive = new ChaCha20Poly1305(receiveKey);
        LocalIndex = localIndex;
        RemoteIndex = remoteIndex;
        IsInitiator = isInitiator;
        CreatedTimestamp = createdTimestamp;
    }

    /// <summary>Our index: the receiver index of transport messages sent to us.</summary>
    public uint LocalIndex { get; }

    /// <summary>The peer's index: written as receiver index into the messages we send.</summary>
    public uint RemoteIndex { get; }

    /// <summary>Whether we initiated the handshake (only the initiator rekeys after REKEY_AFTER_TIME).</summary>
    public bool IsInitiator { get; }

    /// <summary>When the keypair was derived, as a <see cref="TimeProvider.GetTimestamp"/> value.</summary>
    public long CreatedTimestamp { get; }

    /// <summary>The counter the next sealed message will carry (saturates at REJECT_AFTER_MESSAGES).</summary>
    public ulong SendCounter => Interlocked.Read(ref _sendCounter);

    /// <summary>
    /// Seals the plaintext IP packet in <paramref name="packet"/> (empty for a keepalive) into a transport
    /// message, in place: pads with zeros to a multiple of 16 in the tail room, encrypts, appends the tag
    /// and prepends the 16-byte header. Returns false, leaving the packet untouched, when the keypair has
    /// used up its counters (REJECT_AFTER_MESSAGES) or the buffer lacks head or tail room.
    /// </summary>
    public bool TrySeal(PacketBuffer packet)
    {
        ArgumentNullException.ThrowIfNull(packet);
        int length = packet.Length;
        int padded = (length + 15) & ~15;
        if (packet.Offset < HeaderSize || packet.Offset + padded + TagSize > packet.Array.Length)
        {
            return false;
        }

        ulong counter = Interlocked.Increment(ref _sendCounter) - 1;
        if (counter >= ProtocolConstants.RejectAfterMessages)
        {
            Interlocked.Exchange(ref _sendCounter, ProtocolConstants.RejectAfterMessages);
            return false;
        }

        var body = packet.Array.AsSpan(packet.Offset, padded);
        body[length..].Clear();
        var tag = packet.Array.AsSpan(packet.Offset + padded, TagSize);

        Span<byte> nonce = stackalloc byte[NoiseAead.NonceSize];
        NoiseAead.WriteNonce(nonce, counter);
        _send.Encrypt(nonce, body, body, tag);

        packet.Length = padded + TagSize;
        TransportMessage.WriteHeader(packet.Prepend(HeaderSize), RemoteIndex, counter);
        return true;
    }

    /// <summary>
    /// Opens the transport message in <paramref name="packet"/> in place. On <see cref="OpenResult.Ok"/>
    /// the data is the plaintext (padding included: the IP header carries the real length). The caller
    /// has routed the message here by its receiver index. The replay window is updated only for
    /// authentic messages.
    /// </summary>
    public OpenResult TryOpen(PacketBuffer packet)
    {
        ArgumentNullException.ThrowIfNull(packet);
        if (!TransportMessage.TryCreate(packet.Span, out var message))
        {
            return OpenResult.DecryptionFailed;
        }

        ulong counter = message.Counter;
        int contentLength = packet.Length - HeaderSize - TagSize;
        var content = packet.Array.AsSpan(packet.Offset + HeaderSize, contentLength);
        var tag = packet.Array.AsSpan(packet.Offset + HeaderSize + contentLength, TagSize);

        Span<byte> nonce = stackalloc byte[NoiseAead.NonceSize];
        NoiseAead.WriteNonce(nonce, counter);
        try
        {
            _receive.Decrypt(nonce, content, tag, content);
        }
        catch (AuthenticationTagMismatchException)
        {
            // The BCL has no non-throwing decrypt; forged packets are the rare case.
            return OpenResult.DecryptionFailed;
        }

        packet.TrimFront(HeaderSize);
        packet.Length = contentLength;

        if (counter >= ProtocolConstants.RejectAfterMessages)
        {
            return OpenResult.Expired;
        }

        return _replay.TryAccept(counter) ? OpenResult.Ok : OpenResult.Replay;
    }

    /// <summary>Disposes both ciphers (and with them the keys). Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _send.Dispose();
            _receive.Dispose();
        }
    }
}
