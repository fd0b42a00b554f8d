// Benchmark-only: the hand-written DNS codec removed from src/ in issue 10 (DNS on Makaretu.Dns),
// kept unchanged but for its namespace as the reference of DnsAnswerBenchmarks.
namespace TunnelMesh.Net.Benchmarks.Dns.Baseline;

/// <summary>Record types (RFC 1035 §3.2.2, RFC 3596, RFC 6891) the codec and the server know by name.</summary>
internal static class DnsType
{
    public const ushort A = 1;
    public const ushort Ns = 2;
    public const ushort Cname = 5;
    public const ushort Soa = 6;
    public const ushort Ptr = 12;
    public const ushort Mx = 15;
    public const ushort Txt = 16;
    public const ushort Aaaa = 28;
    public const ushort Opt = 41;
    public const ushort Ixfr = 251;
    public const ushort Axfr = 252;
    public const ushort Any = 255;
}

/// <summary>Classes (RFC 1035 §3.2.4).</summary>
internal static class DnsClass
{
    public const ushort In = 1;
    public const ushort Any = 255;
}

/// <summary>Response codes (RFC 1035 §4.1.1, RFC 6891 for the extended ones).</summary>
internal static class DnsRcode
{
    public const int NoError = 0;
    public const int FormErr = 1;
    public const int ServFail = 2;
    public const int NxDomain = 3;
    public const int NotImp = 4;
    public const int Refused = 5;
    public const int BadVers = 16;
}

/// <summary>Limits of the wire format (RFC 1035 §2.3.4, §4.2.1).</summary>
internal static class DnsLimits
{
    /// <summary>Length of the fixed header.</summary>
    public const int HeaderLength = 12;

    /// <summary>The longest label.</summary>
    public const int MaxLabelLength = 63;

    /// <summary>The longest name on the wire, length octets and the root label included.</summary>
    public const int MaxNameLength = 255;

    /// <summary>The largest UDP answer without EDNS(0).</summary>
    public const int ClassicUdpPayload = 512;

    /// <summary>The largest message (TCP framing has a 16-bit length).</summary>
    public const int MaxMessageLength = 65535;

    /// <summary>The highest offset a compression pointer can hold.</summary>
    public const int MaxPointerOffset = 0x3FFF;
}
