using System.Security.Cryptography;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// Sender side of mac1/mac2 (whitepaper §5.4.4, §5.4.7) for handshake messages to one peer: mac1
/// always, mac2 while a cookie from that peer is less than two minutes old. Thread-safe.
/// </summary>
internal sealed class CookieGenerator : IDisposable
{
    private const int MacSize = WireGuardSpec.MacSize;

    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly byte[] _mac1Key = new byte[Blake2s.MaxOutputSize];
    private readonly byte[] _cookieKey = new byte[Blake2s.MaxOutputSize];
    private CookieAead? _cookieAead;
    private bool _disposed;
    private readonly byte[] _lastMac1 = new byte[MacSize];
    private readonly byte[] _cookie = new byte[WireGuardSpec.CookieSize];
    private bool _hasLastMac1;
    private bool _hasCookie;
    private long _cookieReceivedAt;

    /// <summary>Creates a generator for messages to <paramref name="remoteStatic"/>.</summary>
    public CookieGenerator(NodePublicKey remoteStatic, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        Blake2s.Hash(ProtocolConstants.LabelMac1, remoteStatic.Bytes, _mac1Key);
        Blake2s.Hash(ProtocolConstants.LabelCookie, remoteStatic.Bytes, _cookieKey);
    }

    /// <summary>Fills mac1 and mac2 of a 148-byte initiation or 92-byte response, and remembers mac1.</summary>
    public void AddMacs(Span<byte> message)
    {
        if (message.Length is not (WireGuardSpec.InitiationSize or WireGuardSpec.ResponseSize))
        {
            throw new ArgumentException("mac1 and mac2 are added to initiations and responses.", nameof(message));
        }

        var mac1 = message.Slice(message.Length - (2 * MacSize), MacSize);
        var mac2 = message[^MacSize..];
        Blake2s.Mac(_mac1Key, WireGuardSpec.Mac1Covered(message), mac1);

        lock (_gate)
        {
            mac1.CopyTo(_lastMac1);
            _hasLastMac1 = true;
            if (_hasCookie && _time.GetElapsedTime(_cookieReceivedAt) < ProtocolConstants.CookieRefreshTime)
            {
                Blake2s.Mac(_cookie, WireGuardSpec.Mac2Covered(message), mac2);
            }
            else
            {
                mac2.Clear();
            }
        }
    }

    /// <summary>
    /// Decrypts a cookie reply to the last message we added macs to (its mac1 is the associated data)
    /// and keeps the cookie for two minutes. False when there is no such message or it does not decrypt.
    /// The caller has matched the reply's receiver index to that message.
    /// </summary>
    public bool ConsumeReply(ReadOnlySpan<byte> reply)
    {
        if (!CookieReplyMessage.TryCreate(reply, out var message))
        {
            return false;
        }

        Span<byte> cookie = stackalloc byte[WireGuardSpec.CookieSize];
        lock (_gate)
        {
            if (!_hasLastMac1 || _disposed)
            {
                return false;
            }

            // The NSec key is a libsodium guarded allocation (pages of its own), so it is made only when
            // this peer first sends a cookie reply (it is under load), not for every peer; the key is
            // derived from the peer's public key and is no secret.
            _cookieAead ??= new CookieAead(_cookieKey);
            var encrypted = message.EncryptedCookie;
            if (!_cookieAead.TryOpen(message.Nonce, encrypted, _lastMac1, cookie))
            {
                return false;
            }

            cookie.CopyTo(_cookie);
            _hasCookie = true;
            _cookieReceivedAt = _time.GetTimestamp();
        }

        CryptographicOperations.ZeroMemory(cookie);
        return true;
    }

    /// <summary>Disposes the cookie cipher's NSec key and forgets the cookie. Safe to call twice.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            CryptographicOperations.ZeroMemory(_cookie);
            _hasCookie = false;
            _disposed = true;
            _cookieAead?.Dispose();
        }
    }
}
