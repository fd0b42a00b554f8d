using System.Buffers;
using System.Text;
using System.Text.Json;

namespace TunnelMesh.Net.Server.Stores;

/// <summary>Lists of strings (tags, endpoints) as a JSON array in one column.</summary>
internal static class StringListJson
{
    public static string Write(IReadOnlyList<string> values)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (string v in values)
            {
                w.WriteStringValue(v);
            }

            w.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static IReadOnlyList<string> Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var list = new List<string>(doc.RootElement.GetArrayLength());
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            list.Add(e.GetString() ?? "");
        }

        return list;
    }
}
