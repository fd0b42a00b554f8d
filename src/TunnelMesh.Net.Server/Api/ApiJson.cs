using System.Text.Json;

namespace TunnelMesh.Net.Server.Api;

/// <summary>The API's JSON settings: web defaults (camelCase), nullable annotations and required constructor parameters enforced.</summary>
internal static class ApiJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };
}
