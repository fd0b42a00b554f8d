using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Xml.Linq;

namespace TunnelMesh.Net.Samples.Tests.Packaging;

/// <summary>
/// The packages as a user gets them: <c>dotnet pack</c> of the built libraries and tool into a local folder,
/// then a fresh console project outside the repository that references <c>TunnelMesh.Net</c> from that folder
/// (two nodes in it ping each other), and <c>dotnet tool install</c> of the <c>tunnelmesh</c> tool from it.
/// Each run packs a version of its own (0.0.0-pkgtest.*) so nothing stale comes from the NuGet cache;
/// the cache entries it adds are removed at the end.
/// </summary>
[Collection(PackagesCollection.Name)]
public sealed class PackagedConsumerTests(PackagesFixture packages)
{
    [Fact]
    public void Each_package_carries_readme_licence_repository_symbols_and_xml_docs()
    {
        foreach (string id in new[] { "TunnelMesh.Net", "TunnelMesh.Net.Server", "TunnelMesh.Net.Cli" })
        {
            string nupkg = packages.PackagePath(id);
            Assert.True(File.Exists(Path.ChangeExtension(nupkg, ".snupkg")), $"{id}: no .snupkg beside {nupkg}");
            using var zip = ZipFile.OpenRead(nupkg);
            var nuspecEntry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
            XDocument nuspec;
            using (var s = nuspecEntry.Open())
            {
                nuspec = XDocument.Load(s);
            }

            XNamespace ns = nuspec.Root!.Name.Namespace;
            var metadata = nuspec.Root.Element(ns + "metadata")!;
            Assert.Equal("MIT", metadata.Element(ns + "license")?.Value);
            Assert.Equal("expression", metadata.Element(ns + "license")?.Attribute("type")?.Value);
            Assert.Equal("README.md", metadata.Element(ns + "readme")?.Value);
            var repository = metadata.Element(ns + "repository");
            Assert.NotNull(repository);
            Assert.StartsWith("https://", repository.Attribute("url")?.Value, StringComparison.Ordinal);
            Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
            Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")?.Value));
            Assert.Contains(zip.Entries, e => e.FullName == "README.md");

            string libFolder = id == "TunnelMesh.Net.Cli" ? "tools/net10.0/any/" : "lib/net10.0/";
            string assembly = id == "TunnelMesh.Net.Cli" ? "tunnelmesh" : id;
            Assert.Contains(zip.Entries, e => e.FullName == libFolder + assembly + ".dll");
            Assert.Contains(zip.Entries, e => e.FullName == libFolder + assembly + ".xml");
        }
    }

    [Fact]
    public void The_library_package_depends_on_no_asp_net_and_no_database()
    {
        using var zip = ZipFile.OpenRead(packages.PackagePath("TunnelMesh.Net"));
        using var s = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        var nuspec = XDocument.Load(s);
        var ids = nuspec.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => (string)e.Attribute("id")!).ToList();
        Assert.NotEmpty(ids);
        Assert.DoesNotContain(ids, id => id.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || id.Contains("Sqlite", StringComparison.Ordinal) || id == "Npgsql");
        Assert.DoesNotContain(nuspec.Descendants(), e => e.Name.LocalName == "frameworkReference");
    }

    [Fact]
    public async Task A_fresh_console_project_referencing_the_package_builds_and_two_nodes_ping()
    {
        string project = Path.Combine(packages.Scratch, "consumer");
        Directory.CreateDirectory(project);
        await File.WriteAllTextAsync(Path.Combine(project, "consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="TunnelMesh.Net" Version="{packages.Version}" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(project, "Program.cs"), """
            using System.Net;
            using TunnelMesh.Net;

            // Two nodes in one process; their UDP sockets are pinned to loopback so the test sends nothing off the machine.
            var keyA = NodePrivateKey.Generate();
            var keyB = NodePrivateKey.Generate();
            var ipA = IPAddress.Parse("10.77.0.1");
            var ipB = IPAddress.Parse("10.77.0.2");

            var optionsB = new MeshNodeOptions { PrivateKey = keyB, ListenAddress = IPAddress.Loopback };
            optionsB.Addresses.Add(ipB);
            var peerA = new MeshPeerOptions { PublicKey = keyA.PublicKey };
            peerA.AllowedIPs.Add(new IPNetwork(ipA, 32));
            optionsB.Peers.Add(peerA);
            await using var nodeB = new MeshNode(optionsB);
            await nodeB.StartAsync();

            var optionsA = new MeshNodeOptions { PrivateKey = keyA, ListenAddress = IPAddress.Loopback };
            optionsA.Addresses.Add(ipA);
            var peerB = new MeshPeerOptions { PublicKey = keyB.PublicKey, Endpoint = new IPEndPoint(IPAddress.Loopback, nodeB.ListenPort) };
            peerB.AllowedIPs.Add(new IPNetwork(ipB, 32));
            optionsA.Peers.Add(peerB);
            await using var nodeA = new MeshNode(optionsA);
            await nodeA.StartAsync();

            var there = await nodeA.PingAsync(ipB, TimeSpan.FromSeconds(10));
            var back = await nodeB.PingAsync(ipA, TimeSpan.FromSeconds(10));
            Console.WriteLine($"ping A->B {there.TotalMilliseconds:F2} ms, B->A {back.TotalMilliseconds:F2} ms");
            """);

        var build = await packages.DotnetAsync(project, TimeSpan.FromMinutes(4), "build", "-c", "Release", "--configfile", packages.NuGetConfig);
        Assert.True(build.ExitCode == 0, $"dotnet build of the consumer exited {build.ExitCode}:\n{build.Output}");

        var run = await packages.DotnetAsync(project, TimeSpan.FromMinutes(1), "run", "-c", "Release", "--no-build");
        Assert.True(run.ExitCode == 0, $"the consumer exited {run.ExitCode}:\n{run.Output}");
        Assert.Matches(@"ping A->B [\d.]+ ms, B->A [\d.]+ ms", run.Output);
    }

    [Fact]
    public async Task The_tool_installs_from_the_folder_and_answers_help()
    {
        string toolPath = Path.Combine(packages.Scratch, "tools");
        var install = await packages.DotnetAsync(packages.Scratch, TimeSpan.FromMinutes(3),
            "tool", "install", "--tool-path", toolPath, "--add-source", packages.Folder, "--version", packages.Version, "TunnelMesh.Net.Cli");
        Assert.True(install.ExitCode == 0, $"dotnet tool install exited {install.ExitCode}:\n{install.Output}");

        string tunnelmesh = Path.Combine(toolPath, "tunnelmesh");
        Assert.True(File.Exists(tunnelmesh), $"no {tunnelmesh} after install:\n{install.Output}");
        var help = await PackagesFixture.RunAsync(tunnelmesh, packages.Scratch, TimeSpan.FromMinutes(1), ["--help"]);
        Assert.True(help.ExitCode == 0, $"tunnelmesh --help exited {help.ExitCode}:\n{help.Output}");
        foreach (string command in new[] { "serve", "authkey", "join", "status", "peers", "ping" })
        {
            Assert.Contains(command, help.Output, StringComparison.Ordinal);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PackagesCollection : ICollectionFixture<PackagesFixture>
{
    public const string Name = "Packed NuGet packages";
}

/// <summary>Packs the three packages once (from the solution's build output, with a version of this run's own) into a temporary folder.</summary>
public sealed class PackagesFixture : IAsyncLifetime
{
    private static readonly string[] Packed = ["TunnelMesh.Net", "TunnelMesh.Net.Server", "TunnelMesh.Net.Cli"];

    public string Scratch { get; } = Path.Combine(Path.GetTempPath(), "tm-pkgtest-" + Guid.NewGuid().ToString("N")[..12]);

    public string Folder => Path.Combine(Scratch, "packages");

    public string NuGetConfig => Path.Combine(Scratch, "nuget.config");

    /// <summary>A version no earlier run used, so the NuGet cache cannot hand back an older build.</summary>
    public string Version { get; } = $"0.0.0-pkgtest.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";

    public string PackagePath(string id) => Path.Combine(Folder, $"{id}.{Version}.nupkg");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Folder);
        // The machine's own NuGet sources stay (no <clear/>), so the packages' dependencies restore as usual.
        await File.WriteAllTextAsync(NuGetConfig, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="tunnelmesh-local" value="{Folder}" />
              </packageSources>
            </configuration>
            """);

        string root = RepositoryRoot();
        string configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Release";
        foreach (string id in Packed)
        {
            string csproj = Path.Combine(root, "src", id, id + ".csproj");
            var pack = await DotnetAsync(root, TimeSpan.FromMinutes(3), "pack", csproj, "-c", configuration, "--no-build", "-o", Folder, $"-p:Version={Version}");
            Assert.True(pack.ExitCode == 0, $"dotnet pack {id} exited {pack.ExitCode}:\n{pack.Output}");
            Assert.True(File.Exists(PackagePath(id)), $"dotnet pack {id} made no {PackagePath(id)}:\n{pack.Output}");
        }
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(Scratch, recursive: true);
        }
        catch (IOException)
        {
        }

        // The restore put this run's version into the NuGet cache; nothing else will ever ask for it.
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (string id in Packed)
        {
            string dir = Path.Combine(cache, id.ToLowerInvariant(), Version);
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        return Task.CompletedTask;
    }

    public Task<Run> DotnetAsync(string workingDirectory, TimeSpan limit, params string[] args)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        return RunAsync(dotnet, workingDirectory, limit, args);
    }

    public sealed record Run(int ExitCode, string Output);

    /// <summary>Runs a program to its end (killed after <paramref name="limit"/>), without the MSBuild variables of the test run.</summary>
    public static async Task<Run> RunAsync(string program, string workingDirectory, TimeSpan limit, IReadOnlyList<string> args)
    {
        var psi = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // dotnet test hands its own MSBuild settings down; a child build must start from a user's environment.
        foreach (string key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        var output = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish in {limit}:\n{output}");
        }

        process.WaitForExit();
        lock (output)
        {
            return new Run(process.ExitCode, output.ToString());
        }
    }

    private static string RepositoryRoot()
    {
        DirectoryInfo? root = new(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "TunnelMesh.Net.sln")))
        {
            root = root.Parent;
        }

        Assert.True(root is not null, $"no TunnelMesh.Net.sln above {AppContext.BaseDirectory}");
        return root.FullName;
    }
}
