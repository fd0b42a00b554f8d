// SidecarGateway: a public HTTP gateway that is itself a mesh node. /<node>/… and configured host
// names are proxied (by YARP) to HTTP services on mesh nodes, bodies streamed both ways, WebSocket upgrades
// tunnelled, /healthz reports the node, and an unreachable node gets a 502 that says why.
//
//   dotnet run --project samples/SidecarGateway                   # demo: embedded coordinator + "homelab" node
//   dotnet run --project samples/SidecarGateway -- --self-test    # the demo, checked end to end; exits 0 or 1
//   dotnet run --project samples/SidecarGateway -- --MeshNode:ControlUrl=https://… --MeshNode:AuthKey=tmkey-…
using SidecarGateway;
using SidecarGateway.Demo;

bool selfTest = args.Contains("--self-test");
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args.Where(a => a != "--self-test").ToArray(),
    ContentRootPath = AppContext.BaseDirectory, // appsettings.json next to the dll, wherever it is started from
});

DemoMesh? demo = null;
try
{
    string? urls = null;
    if (string.IsNullOrEmpty(builder.Configuration["MeshNode:ControlUrl"]))
    {
        // No mesh to join: make one in this process, with a "homelab" node serving HTTP on port 80.
        using var starting = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        demo = await DemoMesh.StartAsync("homelab", cancellationToken: starting.Token);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MeshNode:ControlUrl"] = demo.ControlUrl.ToString(),
            ["MeshNode:AuthKey"] = demo.AuthKey,
            ["MeshNode:Hostname"] = "gateway",
            ["MeshNode:ListenAddress"] = "127.0.0.1",
        });
        Console.WriteLine($"demo mesh: coordinator on {demo.ControlUrl}, node 'homelab' ({demo.Homelab.Address}) serves HTTP on its port 80");
        if (selfTest)
        {
            urls = "http://127.0.0.1:0"; // never collide with a gateway already running on the default port
        }
    }
    else if (selfTest)
    {
        Console.Error.WriteLine("--self-test runs the demo mesh; leave MeshNode:ControlUrl unset.");
        return 2;
    }

    await using var app = GatewayHost.Build(builder, urls);
    await app.StartAsync();
    var node = GatewayHost.Node(app);
    var address = GatewayHost.Address(app);
    var self = node.GetStatus().Self;
    Console.WriteLine($"gateway: node '{self.Name}' ({node.Address}) in the mesh, public HTTP on {address}");

    if (demo is not null)
    {
        using var joining = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await DemoMesh.WaitForPeerAsync(node, "homelab", joining.Token);
        string g = address.ToString().TrimEnd('/');
        Console.WriteLine($"""

            Try:
              curl {g}/homelab/hello                         # path mode: /<node>/path -> http://homelab:80/path
              curl -H 'Host: homelab.localhost' {g}/hello    # host mode (Gateway:Hosts)
              curl -o /dev/null {g}/homelab/bytes/104857600  # 100 MiB streamed from the node
              head -c 50000000 /dev/urandom | curl --data-binary @- {g}/homelab/sha256
              curl -i {g}/nobody/                            # 502: no node named 'nobody' in the mesh
              curl -i {g}/homelab:81/                        # 502: homelab:81 refused the connection
              curl {g}/healthz
              curl {g}/                                      # the nodes this gateway reaches
            WebSocket echo: ws://{address.Authority}/homelab/echo
            """);
    }

    if (selfTest)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        int failures = await SelfTest.RunAsync(address, "homelab", Console.Out, limit.Token);
        await app.StopAsync();
        Console.WriteLine(failures == 0 ? "self-test passed" : $"self-test: {failures} check(s) failed");
        return failures == 0 ? 0 : 1;
    }

    Console.WriteLine("Ctrl+C to stop.");
    await app.WaitForShutdownAsync();
    return 0;
}
finally
{
    if (demo is not null)
    {
        await demo.DisposeAsync();
    }
}
