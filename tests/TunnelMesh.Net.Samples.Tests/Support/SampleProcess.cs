using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Samples.Tests.Support;

/// <summary>Runs a sample's built dll (samples/&lt;name&gt;/bin/&lt;configuration&gt;/&lt;framework&gt;/) as its own process, as a user would.</summary>
internal static class SampleProcess
{
    /// <summary>samples/&lt;name&gt;/bin/&lt;configuration of this test&gt;/&lt;framework&gt;/&lt;name&gt;.dll under the folder holding TunnelMesh.Net.sln.</summary>
    public static string Dll(string name)
    {
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string configuration = bin.Parent?.Name ?? "Release";
        string framework = bin.Name;
        DirectoryInfo? root = bin;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "TunnelMesh.Net.sln")))
        {
            root = root.Parent;
        }

        Assert.True(root is not null, $"no TunnelMesh.Net.sln above {AppContext.BaseDirectory}");
        string dll = Path.Combine(root.FullName, "samples", name, "bin", configuration, framework, name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first (dotnet build TunnelMesh.Net.sln -c {configuration})");
        return dll;
    }

    /// <summary>Runs <c>dotnet &lt;sample&gt;.dll args…</c> to its end (killed after <paramref name="limit"/>).</summary>
    public static Task<ProcessRunner.Result> RunAsync(string name, IReadOnlyList<string> args, TimeSpan limit)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        return ProcessRunner.RunAsync(dotnet, [Dll(name), .. args], limit);
    }
}
