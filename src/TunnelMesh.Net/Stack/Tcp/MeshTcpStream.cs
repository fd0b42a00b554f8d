using System.IO.Pipelines;
using System.Net;

namespace TunnelMesh.Net;

/// <summary>A TCP connection over the mesh: a <see cref="Stream"/> and an <see cref="IDuplexPipe"/>.</summary>
public sealed class MeshTcpStream : Stream, IDuplexPipe
{
    internal MeshTcpStream()
    {
        LocalEndPoint = RemoteEndPoint = new IPEndPoint(IPAddress.Any, 0);
    }

    /// <summary>This node's address and port.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>The peer's address and port.</summary>
    public IPEndPoint RemoteEndPoint { get; }

    /// <summary>Whether Nagle's algorithm is off.</summary>
    public bool NoDelay { get; set; }

    /// <inheritdoc/>
    public PipeReader Input => throw new NotImplementedException();

    /// <inheritdoc/>
    public PipeWriter Output => throw new NotImplementedException();

    /// <inheritdoc/>
    public override bool CanRead => true;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override bool CanWrite => true;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Half-close: sends FIN after the data already written; reading goes on until the peer closes.</summary>
    public ValueTask ShutdownSendAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();

    /// <summary>Resets the connection (sends RST) and discards unsent and unread data.</summary>
    public void Abort() => throw new NotImplementedException();

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => throw new NotImplementedException();

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotImplementedException();
}
