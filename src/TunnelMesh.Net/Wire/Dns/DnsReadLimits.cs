namespace TunnelMesh.Net.Wire.Dns;

/// <summary>How much of a message <see cref="DnsMessageShape.Check"/> lets through.</summary>
/// <param name="MaxLength">The longest message, in bytes.</param>
/// <param name="MaxQuestions">The most entries in the question section.</param>
/// <param name="MaxRecords">The most records in the answer, authority and additional sections together.</param>
internal readonly record struct DnsReadLimits(int MaxLength, int MaxQuestions, int MaxRecords)
{
    /// <summary>
    /// A query to the mesh DNS server: at most 4096 bytes (dig's query with EDNS and a cookie is 52),
    /// one question, 16 records (a query carries an OPT record and perhaps a signature). Far above
    /// any real query, and low enough that whatever Makaretu.Dns reads stays cheap.
    /// </summary>
    public static DnsReadLimits Query { get; } = new(4096, 1, 16);

    /// <summary>Whatever the wire format allows (trusted or test input).</summary>
    public static DnsReadLimits Any { get; } = new(65535, 65535, 3 * 65535);
}
