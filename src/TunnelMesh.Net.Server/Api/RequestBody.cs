using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace TunnelMesh.Net.Server.Api;

/// <summary>Reads a JSON request body within the size limit, whatever the server enforces itself.</summary>
internal static class RequestBody
{
    /// <summary>The body as <typeparamref name="T"/>, or the problem to answer (413 too large, 400 not valid).</summary>
    public static async Task<(T? Value, IResult? Problem)> ReadJsonAsync<T>(HttpContext context, long limit, bool allowEmpty = false)
        where T : class
    {
        HttpRequest request = context.Request;
        if (request.ContentLength > limit)
        {
            return (null, TooLarge(limit));
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = limit;
        }

        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(request.ContentLength ?? 4096, Math.Min(limit, 1 << 20)) + 1);
        try
        {
            while (true)
            {
                Memory<byte> m = buffer.GetMemory(4096);
                int n = await request.Body.ReadAsync(m, context.RequestAborted).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                buffer.Advance(n);
                if (buffer.WrittenCount > limit)
                {
                    return (null, TooLarge(limit));
                }
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limit));
        }

        if (buffer.WrittenCount == 0)
        {
            return allowEmpty ? (null, null) : (null, Problems.BadRequest($"The request needs a JSON body ({typeof(T).Name})."));
        }

        try
        {
            T? value = JsonSerializer.Deserialize<T>(buffer.WrittenSpan, ApiJson.Options);
            return value is null
                ? (null, Problems.BadRequest($"The body is not a {typeof(T).Name}."))
                : (value, null);
        }
        catch (JsonException ex)
        {
            string where = ex.Path is { Length: > 0 } p ? $" at {p}" : "";
            return (null, Problems.BadRequest($"The body is not valid JSON for a {typeof(T).Name}{where}."));
        }
    }

    private static IResult TooLarge(long limit) =>
        Problems.Create(StatusCodes.Status413PayloadTooLarge, $"The request body is larger than the limit of {limit} bytes.");
}

/// <summary>RFC 9457 problem details with the reason in <c>detail</c>.</summary>
internal static class Problems
{
    public static IResult Create(int status, string detail) => Results.Problem(detail: detail, statusCode: status);

    public static IResult BadRequest(string detail) => Create(StatusCodes.Status400BadRequest, detail);

    public static IResult Unauthorized(string detail) => new WithHeader(Create(StatusCodes.Status401Unauthorized, detail), "WWW-Authenticate", "Bearer");

    public static IResult Forbidden(string detail) => Create(StatusCodes.Status403Forbidden, detail);

    public static IResult NotFound(string detail) => Create(StatusCodes.Status404NotFound, detail);

    public static IResult Conflict(string detail) => Create(StatusCodes.Status409Conflict, detail);

    /// <summary>A result with one response header added.</summary>
    private sealed class WithHeader(IResult inner, string name, string value) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers[name] = value;
            return inner.ExecuteAsync(httpContext);
        }
    }
}
