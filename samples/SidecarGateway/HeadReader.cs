using System.Globalization;
using System.Text;

namespace SidecarGateway;

/// <summary>An HTTP/1.1 response head: status code and header lines in order.</summary>
internal sealed record ResponseHead(int Status, IReadOnlyList<(string Name, string Value)> Headers)
{
    /// <summary>The first value of a header, or null.</summary>
    public string? Header(string name)
    {
        foreach (var (n, v) in Headers)
        {
            if (n.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return v;
            }
        }

        return null;
    }
}

/// <summary>
/// Reads an HTTP/1.1 response from a raw connection: the head (bounded in size), then the body as
/// its framing says (Content-Length, chunked, or until the connection closes). What was read past the
/// head stays in the buffer (<see cref="Leftover"/>): after a 101 it is the first bytes of the new protocol.
/// </summary>
internal sealed class HeadReader
{
    private const int MaxHeadSize = 64 * 1024;
    private readonly Stream _stream;
    private byte[] _buffer = new byte[8 * 1024];
    private int _start;
    private int _end;

    public HeadReader(Stream stream) => _stream = stream;

    /// <summary>Bytes read from the connection and not consumed yet.</summary>
    public ReadOnlyMemory<byte> Leftover() => _buffer.AsMemory(_start, _end - _start);

    /// <exception cref="InvalidDataException">Not an HTTP/1.x response head, or larger than 64 KiB.</exception>
    /// <exception cref="IOException">The connection closed before the head was complete.</exception>
    public async Task<ResponseHead> ReadHeadAsync(CancellationToken cancellationToken)
    {
        int headEnd;
        while ((headEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (_end - _start >= MaxHeadSize)
            {
                throw new InvalidDataException("the response head is larger than 64 KiB");
            }

            if (await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                throw new IOException("the connection closed inside the response head");
            }
        }

        string text = Encoding.Latin1.GetString(_buffer, _start, headEnd);
        _start += headEnd + 4;
        string[] lines = text.Split("\r\n");
        string[] statusLine = lines[0].Split(' ', 3);
        if (statusLine.Length < 2 || !statusLine[0].StartsWith("HTTP/1.", StringComparison.Ordinal)
            || statusLine[1].Length != 3 || !int.TryParse(statusLine[1], NumberStyles.None, CultureInfo.InvariantCulture, out int status) || status < 100)
        {
            throw new InvalidDataException($"bad status line '{lines[0]}'");
        }

        var headers = new List<(string, string)>(lines.Length - 1);
        for (int i = 1; i < lines.Length; i++)
        {
            int colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || lines[i].AsSpan(0, colon).ContainsAny(" \t"))
            {
                throw new InvalidDataException($"bad header line '{lines[i]}'");
            }

            headers.Add((lines[i][..colon], lines[i][(colon + 1)..].Trim()));
        }

        return new ResponseHead(status, headers);
    }

    /// <summary>Copies up to <paramref name="count"/> bytes (or until the connection closes, for <see cref="long.MaxValue"/>).</summary>
    /// <exception cref="IOException">The connection closed before <paramref name="count"/> bytes (when a length was given).</exception>
    public async Task CopyAsync(Stream destination, long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (_start == _end && await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                if (count == long.MaxValue)
                {
                    return;
                }

                throw new IOException($"the connection closed {count} bytes before the end of the body");
            }

            int n = (int)Math.Min(count, _end - _start);
            await destination.WriteAsync(_buffer.AsMemory(_start, n), cancellationToken).ConfigureAwait(false);
            _start += n;
            if (count != long.MaxValue)
            {
                count -= n;
            }
        }
    }

    /// <summary>Decodes a chunked body (RFC 9112 section 7.1) into <paramref name="destination"/>; trailers are read and dropped.</summary>
    public async Task CopyChunkedAsync(Stream destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            string line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
            int semicolon = line.IndexOf(';', StringComparison.Ordinal);
            string size = (semicolon < 0 ? line : line[..semicolon]).Trim();
            if (!long.TryParse(size, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long length) || length < 0)
            {
                throw new InvalidDataException($"bad chunk size '{line}'");
            }

            if (length == 0)
            {
                while ((await ReadLineAsync(cancellationToken).ConfigureAwait(false)).Length > 0)
                {
                    // trailer fields: dropped
                }

                return;
            }

            await CopyAsync(destination, length, cancellationToken).ConfigureAwait(false);
            if ((await ReadLineAsync(cancellationToken).ConfigureAwait(false)).Length != 0)
            {
                throw new InvalidDataException("a chunk is not followed by CRLF");
            }
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        int lineEnd;
        while ((lineEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8)) < 0)
        {
            if (_end - _start >= 4096)
            {
                throw new InvalidDataException("a chunk line is longer than 4 KiB");
            }

            if (await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                throw new IOException("the connection closed inside a chunked body");
            }
        }

        string line = Encoding.Latin1.GetString(_buffer, _start, lineEnd);
        _start += lineEnd + 2;
        return line;
    }

    private async Task<int> FillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, MaxHeadSize + 1024));
        }

        int n = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        _end += n;
        return n;
    }
}
