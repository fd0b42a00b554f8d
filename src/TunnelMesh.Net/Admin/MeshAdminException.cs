using System.Net;

namespace TunnelMesh.Net.Admin;

/// <summary>
/// The coordinator refused a request of a <see cref="MeshAdminClient"/>: a wrong admin credential
/// (401), a node or auth key that does not exist (404), a bad field (400), a name taken (409), …
/// The coordinator explains every refusal as RFC 9457 problem details; <see cref="Detail"/> and
/// <see cref="Title"/> carry them and <see cref="Reason"/> is the one to show. The message never
/// contains the admin credential. Failures to reach the coordinator at all stay
/// <see cref="HttpRequestException"/> (or <see cref="TaskCanceledException"/> on a request timeout).
/// </summary>
public sealed class MeshAdminException : Exception
{
    /// <summary>Creates the exception for a refused request.</summary>
    /// <param name="operation">What was attempted, e.g. <c>deleting node 7</c>.</param>
    /// <param name="statusCode">The HTTP status of the coordinator's answer.</param>
    /// <param name="title">The problem's <c>title</c>, if the answer had one.</param>
    /// <param name="detail">The problem's <c>detail</c>, if the answer had one.</param>
    public MeshAdminException(string operation, HttpStatusCode statusCode, string? title, string? detail)
        : base($"The coordinator refused {operation}: {detail ?? title ?? statusCode.ToString()} (HTTP {(int)statusCode})")
    {
        Operation = operation;
        StatusCode = statusCode;
        Title = title;
        Detail = detail;
    }

    /// <summary>Creates the exception.</summary>
    public MeshAdminException()
        : this("a request", default, null, "unknown failure")
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public MeshAdminException(string message)
        : base(message)
    {
        Operation = "a request";
        Detail = message;
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public MeshAdminException(string message, Exception innerException)
        : base(message, innerException)
    {
        Operation = "a request";
        Detail = message;
    }

    /// <summary>What was attempted, e.g. <c>creating an auth key</c> or <c>getting node 7</c>.</summary>
    public string Operation { get; }

    /// <summary>The HTTP status of the coordinator's answer (401 wrong credential, 404 no such node or key, 400 bad field, 409 conflict).</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The problem's <c>title</c> (e.g. <c>Not Found</c>); null when the answer was not problem details.</summary>
    public string? Title { get; }

    /// <summary>The problem's <c>detail</c>: the coordinator's reason (e.g. <c>No node 7.</c>, <c>tags: 'x' is not tag:&lt;name&gt; …</c>); null when the answer had none.</summary>
    public string? Detail { get; }

    /// <summary>The reason to show: <see cref="Detail"/>, else <see cref="Title"/>, else the status code's name.</summary>
    public string Reason => Detail ?? Title ?? StatusCode.ToString();

    /// <summary>Whether the admin credential was missing or wrong (401 or 403).</summary>
    public bool IsUnauthorized => StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden;

    /// <summary>Whether the node or auth key the request named does not exist (404).</summary>
    public bool IsNotFound => StatusCode is HttpStatusCode.NotFound;
}
