using System.Net;

namespace TunnelMesh.Net;

/// <summary>
/// The coordinator refused a request of the node (for example a join with a revoked or expired auth
/// key), or could not be reached when the node had no saved state to start from.
/// <see cref="Reason"/> carries the coordinator's explanation (the problem detail's <c>detail</c>).
/// </summary>
public sealed class MeshControlException : Exception
{
    /// <summary>Creates the exception for a refusal.</summary>
    /// <param name="statusCode">The HTTP status of the answer, if there was one.</param>
    /// <param name="reason">Why: the coordinator's <c>detail</c>, or a description of the failure.</param>
    /// <param name="innerException">The transport failure, if any.</param>
    public MeshControlException(HttpStatusCode? statusCode, string reason, Exception? innerException = null)
        : base(statusCode is { } s ? $"The coordinator refused: {reason} (HTTP {(int)s})" : $"The coordinator could not be used: {reason}", innerException)
    {
        StatusCode = statusCode;
        Reason = reason;
    }

    /// <summary>Creates the exception.</summary>
    public MeshControlException()
        : this(null, "unknown failure")
    {
    }

    /// <summary>Creates the exception.</summary>
    public MeshControlException(string message)
        : this(null, message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MeshControlException(string message, Exception innerException)
        : this(null, message, innerException)
    {
    }

    /// <summary>The HTTP status of the coordinator's answer; null when it was not reached.</summary>
    public HttpStatusCode? StatusCode { get; }

    /// <summary>The coordinator's reason (the problem detail's <c>detail</c>, else its <c>title</c>), or the failure.</summary>
    public string Reason { get; }

    /// <summary>Whether the coordinator answered and refused the node's credentials (401 or 403).</summary>
    public bool IsUnauthorized => StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden;
}
