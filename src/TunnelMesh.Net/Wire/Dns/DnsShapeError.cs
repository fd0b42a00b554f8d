namespace TunnelMesh.Net.Wire.Dns;

/// <summary>Why <see cref="DnsMessageShape.Check"/> refused a message.</summary>
internal enum DnsShapeError
{
    /// <summary>The message is well formed as far as the check looks.</summary>
    None,

    /// <summary>Fewer than 12 bytes: no header to answer.</summary>
    NoHeader,

    /// <summary>Longer than the caller's limit.</summary>
    TooLong,

    /// <summary>More questions or records than the caller's limits.</summary>
    TooManyEntries,

    /// <summary>A question or record runs past the end, or a section count promises more than follows.</summary>
    Truncated,

    /// <summary>A question or owner name that is malformed (see <see cref="DnsMessageShape.TrySkipName"/>).</summary>
    BadName,

    /// <summary>Bytes left after the last record the counts announce.</summary>
    TrailingBytes,
}
