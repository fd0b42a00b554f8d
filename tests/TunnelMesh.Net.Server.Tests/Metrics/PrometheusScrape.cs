using System.Globalization;

namespace TunnelMesh.Net.Server.Tests.Metrics;

/// <summary>One scrape in the Prometheus text exposition format: every sample by metric name and labels.</summary>
internal sealed class PrometheusScrape
{
    private readonly List<Sample> _samples = [];
    private readonly Dictionary<string, string> _types = new(StringComparer.Ordinal);

    private PrometheusScrape(string text)
    {
        Text = text;
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                string[] parts = line.Split(' ');
                _types[parts[2]] = parts[3];
            }

            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            int brace = line.IndexOf('{', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            string name;
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            string rest;
            if (brace >= 0 && (space < 0 || brace < space))
            {
                int close = line.LastIndexOf('}');
                name = line[..brace];
                foreach (string pair in SplitLabels(line[(brace + 1)..close]))
                {
                    int eq = pair.IndexOf('=', StringComparison.Ordinal);
                    labels[pair[..eq]] = pair[(eq + 2)..^1];
                }

                rest = line[(close + 1)..].Trim();
            }
            else
            {
                name = line[..space];
                rest = line[(space + 1)..].Trim();
            }

            string value = rest.Split(' ')[0];
            _samples.Add(new Sample(name, labels, double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture)));
        }
    }

    public string Text { get; }

    public IReadOnlyList<Sample> Samples => _samples;

    /// <summary>Every metric family's name and type (counter, gauge, …) from its <c># TYPE</c> line.</summary>
    public IReadOnlyDictionary<string, string> Types => _types;

    public static async Task<PrometheusScrape> GetAsync(HttpClient client, string path = "/metrics")
    {
        using HttpResponseMessage response = await client.GetAsync(path);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path} answered {(int)response.StatusCode}: {text}");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return new PrometheusScrape(text);
    }

    /// <summary>Whether any sample has this metric name.</summary>
    public bool Has(string name) => _samples.Exists(s => s.Name == name);

    /// <summary>The sum of the samples named <paramref name="name"/> whose labels include every given pair; 0 when there is none.</summary>
    public double Sum(string name, params (string Label, string Value)[] match) =>
        _samples.Where(s => s.Name == name && match.All(m => s.Labels.TryGetValue(m.Label, out string? v) && v == m.Value)).Sum(s => s.Value);

    private static IEnumerable<string> SplitLabels(string text)
    {
        int start = 0;
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\')
            {
                i++;
            }
            else if (text[i] == '"')
            {
                quoted = !quoted;
            }
            else if (text[i] == ',' && !quoted)
            {
                yield return text[start..i];
                start = i + 1;
            }
        }

        if (start < text.Length)
        {
            yield return text[start..];
        }
    }

    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);
}
