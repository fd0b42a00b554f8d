using System.Security.Cryptography;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// Responder side of mac1/mac2 and cookie replies (whitepaper §5.4.4, §5.4.7) for the local identity.
/// Thread-safe.
/// </summary>
/// <remarks>
/// The cookie for a source is MAC(Rm, address bytes || port), where Rm is a random secret replaced
/// every two minutes when a reply is made. Like wireguard-go (whose endpoints marshal as
/// <c>netip.AddrPort.MarshalBinary</c>), the address is 4 bytes for IPv4 and 16 for IPv6, and the
/// port follows as 2 bytes little-endian. Only this node ever recomputes its cookies, so the encoding
/// need only be stable here.
/// </remarks>
internal sealed class CookieChecker
{
    private const int MacSize = WireGuardSpec.MacSize;

    private readonly LocalIdentity _local;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly byte[] _secret = new byte[Blake2s.MaxOutputSize];
    private long _secretSetAt;
    private bool _hasSecret;

    /// <summary>Creates a checker for messages sent to <paramref name="local"/>.</summary>
    public CookieChecker(LocalIdentity local, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(time);
        _local = local;
        _time = time;
    }

    /// <summary>Whether mac1 of a handshake initiation or response is right (constant-time compare).</summary>
    public bool CheckMac1(ReadOnlySpan<byte> message)
    {
        if (!IsHandshakeMessage(message))
        {
            return false;
        }

        Span<byte> mac = stackalloc byte[MacSize];
        Blake2s.Mac(_local.Mac1Key, WireGuardSpec.Mac1Covered(message), mac);
        return CryptographicOperations.FixedTimeEquals(mac, message.Slice(message.Length - (2 * MacSize), MacSize));
    }

    /// <summary>
    /// Whether mac2 of a handshake message is right for a cookie we gave <paramref name="source"/> under
    /// the current secret (false when the secret is older than two minutes or none was made yet).
    /// </summary>
    public bool CheckMac2(ReadOnlySpan<byte> message, Endpoint source)
    {
        if (!IsHandshakeMessage(message))
        {
            return false;
        }

        Span<byte> cookie = stackalloc byte[WireGuardSpec.CookieSize];
        lock (_gate)
        {
            if (!_hasSecret || _time.GetElapsedTime(_secretSetAt) > ProtocolConstants.CookieRefreshTime)
            {
                return false;
            }

            ComputeCookie(source, cookie);
        }

        Span<byte> mac = stackalloc byte[MacSize];
        Blake2s.Mac(cookie, WireGuardSpec.Mac2Covered(message), mac);
        CryptographicOperations.ZeroMemory(cookie);
        return CryptographicOperations.FixedTimeEquals(mac, message[^MacSize..]);
    }

    /// <summary>
    /// Writes a 64-byte cookie reply to <paramref name="message"/> (an initiation or response from
    /// <paramref name="source"/> whose mac1 was valid) into <paramref name="reply"/>.
    /// <paramref name="receiverIndex"/> is the sender index of that message.
    /// </summary>
    public void CreateReply(Span<byte> reply, ReadOnlySpan<byte> message, uint receiverIndex, Endpoint source)
    {
        if (reply.Length != WireGuardSpec.CookieReplySize)
        {
            throw new ArgumentException($"A cookie reply is {WireGuardSpec.CookieReplySize} bytes.", nameof(reply));
        }

        if (!IsHandshakeMessage(message))
        {
            throw new ArgumentException("Cookie replies answer initiations and responses.", nameof(message));
        }

        Span<byte> cookie = stackalloc byte[WireGuardSpec.CookieSize];
        lock (_gate)
        {
            if (!_hasSecret || _time.GetElapsedTime(_secretSetAt) > ProtocolConstants.CookieRefreshTime)
            {
                RandomNumberGenerator.Fill(_secret);
                _secretSetAt = _time.GetTimestamp();
                _hasSecret = true;
            }

            ComputeCookie(source, cookie);
        }

        WireGuardSpec.WriteType(reply, WireGuardSpec.TypeCookieReply);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(reply[WireGuardSpec.CookieReply.Receiver..], receiverIndex);
        var nonce = reply.Slice(WireGuardSpec.CookieReply.Nonce, WireGuardSpec.CookieNonceSize);
        RandomNumberGenerator.Fill(nonce);
        var encrypted = reply.Slice(WireGuardSpec.CookieReply.EncryptedCookie, WireGuardSpec.CookieReply.EncryptedCookieSize);
        var mac1 = message.Slice(message.Length - (2 * MacSize), MacSize);
        _local.CookieAead.Seal(nonce, cookie, mac1, encrypted);
        CryptographicOperations.ZeroMemory(cookie);
    }

    private static bool IsHandshakeMessage(ReadOnlySpan<byte> message) =>
        InitiationMessage.TryCreate(message, out _) || ResponseMessage.TryCreate(message, out _);

    // Caller holds _gate.
    private void ComputeCookie(Endpoint source, Span<byte> cookie)
    {
        Span<byte> addressAndPort = stackalloc byte[18];
        int n = source.WriteAddress(addressAndPort);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(addressAndPort[n..], source.Port);
        Blake2s.Mac(_secret, addressAndPort[..(n + 2)], cookie);
    }
}
