namespace TunnelMesh.Net.BenchCommon;

/// <summary>Percentiles of a set of measurements (nearest rank), in their unit.</summary>
internal sealed record Summary(int Count, double Min, double P50, double P90, double P99, double Max, double Mean)
{
    public static Summary Of(IEnumerable<double> values)
    {
        double[] v = [.. values];
        if (v.Length == 0)
        {
            return new Summary(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        }

        Array.Sort(v);
        return new Summary(v.Length, v[0], Rank(v, 0.50), Rank(v, 0.90), Rank(v, 0.99), v[^1], v.Average());
    }

    private static double Rank(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    public override string ToString() => Count == 0
        ? "none"
        : FormattableString.Invariant($"p50 {P50:F1}  p90 {P90:F1}  p99 {P99:F1}  max {Max:F1}  (min {Min:F1}, n {Count})");
}
