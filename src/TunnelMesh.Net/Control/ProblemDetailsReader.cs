using System.Text.Json;

namespace TunnelMesh.Net.Control;

/// <summary>
/// Reads the reason out of a refused answer of the coordinator: an RFC 9457 problem details body
/// (<c>detail</c>, else <c>title</c>), or the status line when the body is something else.
/// Shared by the node's <see cref="ControlClient"/> and the admin client.
/// </summary>
internal static class ProblemDetailsReader
{
    /// <summary>Bodies larger than this are not parsed (a problem details body is a few hundred bytes).</summary>
    public const int MaxProblemBytes = 16 * 1024;

    /// <summary>The problem's <c>title</c> and <c>detail</c>; each null when the body does not carry it.</summary>
    public static async Task<(string? Title, string? Detail)> ReadAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (body.Length is 0 or > MaxProblemBytes)
            {
                return (null, null);
            }

            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return (null, null);
            }

            return (NonEmpty(document.RootElement, "title"), NonEmpty(document.RootElement, "detail"));
        }
        catch (JsonException)
        {
            // Not a problem details body: the status line is all there is.
            return (null, null);
        }
    }

    /// <summary>The reason to show: the detail, else the title, else the status line's reason phrase.</summary>
    public static string Reason(HttpResponseMessage response, string? title, string? detail) =>
        detail ?? title ?? response.ReasonPhrase ?? "no reason given";

    private static string? NonEmpty(JsonElement problem, string name) =>
        problem.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } s ? s : null;
}
