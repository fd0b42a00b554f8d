namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// A fact that needs root and external programs (Debian packages). On a developer machine without
/// them it is skipped with a reason naming what is missing; in CI (environment CI=true, where
/// .ci/run installed them) it always runs, so a missing prerequisite fails instead of hiding.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ExternalFactAttribute : FactAttribute
{
    public ExternalFactAttribute(params string[] programs)
    {
        if (Environment.GetEnvironmentVariable("CI") == "true")
        {
            return;
        }

        var missing = ExternalTools.Missing(programs);
        if (!ExternalTools.IsRoot)
        {
            Skip = "needs root (network namespaces); runs in CI";
        }
        else if (missing.Count > 0)
        {
            Skip = $"needs {string.Join(", ", missing)} (apt-get install: see .ci/run); runs in CI";
        }
    }
}

public static class ExternalTools
{
    public static bool IsRoot => Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root" || GetUid() == 0;

    public static IReadOnlyList<string> Missing(IEnumerable<string> programs) =>
        programs.Where(p => Find(p) is null).ToList();

    public static string? Find(string program)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin:/usr/sbin:/sbin").Split(':').Concat(["/usr/sbin", "/sbin"]))
        {
            var path = Path.Combine(dir, program);
            if (File.Exists(path))
            {
                return path;
            }
        }

        return null;
    }

    private static uint GetUid()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                {
                    return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
                }
            }
        }
        catch (IOException)
        {
        }

        return uint.MaxValue;
    }
}
