// PaasSdk: the PaaS provider's story. Customers bring machines of their own (a homelab behind NAT);
// the PaaS enrolls each one into its mesh with a one-shot, ephemeral, tagged auth key made through
// the coordinator's admin API (MeshAdminClient), waits until it is online, calls its service by name
// over the mesh, and removes it again. Everything runs in this one process: an embedded coordinator
// (ASP.NET Core on 127.0.0.1, SQLite in a temporary folder), the PaaS's own node, and a second node
// standing for the customer's machine. Exit code 0 when every step worked; 1 with a one-line reason.
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PaasSdk;
using TunnelMesh.Net;
using TunnelMesh.Net.Admin;
using TunnelMesh.Net.Control;

const string Customer = "customer-42";
const string Machine = "homelab-42";
const int ServicePort = 8080;
TimeSpan stepTimeout = TimeSpan.FromSeconds(30);

string folder = Directory.CreateTempSubdirectory("tunnelmesh-paas-").FullName;
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
CancellationToken ct = timeout.Token;
int step = 0;
void Step(string text) => Console.WriteLine($"[{++step}] {text}");

var nodes = new List<MeshNode>();
WebApplication? coordinator = null;
try
{
    // 1. The coordinator, embedded in the PaaS's own ASP.NET Core app (here: alone on 127.0.0.1).
    string adminCredential = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    builder.Services.AddMeshCoordinator(o =>
    {
        o.AdminCredential = adminCredential;
        o.SqlitePath = Path.Combine(folder, "coordinator.db");
    });
    coordinator = builder.Build();
    coordinator.MapMeshCoordinator();
    await coordinator.StartAsync(ct);
    var url = new Uri(coordinator.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    Step($"coordinator on {url} (SQLite in {folder})");

    // 2. The PaaS's side: the admin API client and the PaaS's own node, tagged tag:paas.
    using var admin = new MeshAdminClient(url, adminCredential);
    CreatedAuthKey paasKey = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Reusable = true, Tags = ["tag:paas"], Description = "the PaaS's own nodes" }, ct);
    MeshNode paas = Track(new MeshNode(new MeshNodeOptions
    {
        ControlUrl = url,
        AuthKey = paasKey.Key,
        Hostname = "paas",
        StateDirectory = Path.Combine(folder, "paas"),
        ListenAddress = IPAddress.Loopback,
    }));
    await paas.StartAsync(ct);
    Step($"paas joined as {paas.GetStatus().Self.Fqdn} ({paas.Address}) with a reusable key tagged tag:paas");

    using var machines = new CustomerMachines(admin, paas, url);

    // 3. A customer asks to bring a machine: the PaaS enrolls it and hands over the key and the instructions.
    Enrollment enrollment = await machines.EnrollAsync(Customer, Machine, keyLifetime: TimeSpan.FromHours(1), ct);
    AuthKeyInfo keyInfo = (await admin.ListAuthKeysAsync(ct)).Single(k => k.Id == enrollment.KeyId);
    Step($"enrolled {enrollment}: one-shot={!keyInfo.Reusable} ephemeral={keyInfo.Ephemeral} tags={string.Join(",", keyInfo.Tags)} key {keyInfo.Prefix}");
    Console.WriteLine($"    customer runs: {enrollment.Instructions}");

    // 4. The customer's machine joins with that key (here a second node in this process, with its own state).
    MeshNode homelab = Track(new MeshNode(new MeshNodeOptions
    {
        ControlUrl = url,
        AuthKey = enrollment.AuthKey,
        Hostname = Machine,
        Ephemeral = true,
        StateDirectory = Path.Combine(folder, Machine),
        ListenAddress = IPAddress.Loopback,
    }));
    await homelab.StartAsync(ct);
    var service = new HomelabService(homelab, Customer, line => Console.WriteLine($"    {Machine} service: {line}"));
    await using MeshTcpListener listener = await homelab.ListenAsync(ServicePort, ct);
    Task serving = service.ServeAsync(listener, ct);
    Step($"{homelab.GetStatus().Self.Name} joined ({homelab.Address}), serving HTTP on {listener.LocalEndPoint}");

    // 5. The PaaS waits for it, then calls its service by name over the mesh.
    MeshNodeInfo node = await machines.WaitOnlineAsync(enrollment, stepTimeout, ct);
    Step($"{node.Name} is online: node {node.Id}, {string.Join(", ", node.Addresses)}, ephemeral={node.Ephemeral}, tags={string.Join(",", node.Tags)}");
    string answer = await machines.CallAsync(enrollment, ServicePort, "/status", ct);
    Step($"{Machine} answered: {answer.Trim()}");
    Check(answer.Contains($"you are paas [{HomelabService.AllowedTag}]", StringComparison.Ordinal), $"the answer does not name the caller as paas [{HomelabService.AllowedTag}]: {answer.Trim()}");
    Check(service.Answered == 1, $"the service answered {service.Answered} requests, expected 1");

    // 6. The customer leaves: the PaaS removes the machine; its peers drop it.
    MeshNodeInfo? removed = await machines.RemoveAsync(enrollment, stepTimeout, ct);
    Check(removed?.Id == node.Id, $"RemoveAsync removed {removed?.Id.ToString() ?? "nothing"}, expected node {node.Id}");
    Check(await admin.FindNodeAsync(Machine, ct) is null, $"the coordinator still lists {Machine}");
    Check(paas.GetStatus().FindPeer(Machine) is null, $"paas still sees {Machine}");
    Step($"removed {Machine} (node {node.Id}); the coordinator no longer lists it and paas no longer sees it ({paas.GetStatus().Peers.Count} peers)");
    await listener.DisposeAsync();
    await serving;
    await homelab.DisposeAsync();

    // 7. The key was one-shot: a copy of it cannot bring a machine back.
    MeshNode again = Track(new MeshNode(new MeshNodeOptions
    {
        ControlUrl = url,
        AuthKey = enrollment.AuthKey,
        Hostname = Machine,
        Ephemeral = true,
        StateDirectory = Path.Combine(folder, Machine + "-again"),
        ListenAddress = IPAddress.Loopback,
    }));
    try
    {
        await again.StartAsync(ct);
        throw new InvalidOperationException("the one-shot key was accepted a second time");
    }
    catch (MeshControlException refused) when (refused.IsUnauthorized)
    {
        Check(refused.Reason.Contains("already used", StringComparison.Ordinal), $"the second join was refused for another reason: {refused.Reason}");
        Step($"joining again with the same key was refused (HTTP {(int)refused.StatusCode!}): {refused.Reason}");
    }

    Check(await admin.FindNodeAsync(Machine, ct) is null, $"the refused join left a node {Machine}");
    Console.WriteLine("PaasSdk finished.");
    return 0;
}
catch (Exception e)
{
    string reason = timeout.IsCancellationRequested ? "timed out after 120 s" : $"{e.GetType().Name}: {e.Message}";
    Console.Error.WriteLine($"PaasSdk failed at step {step + 1}: {reason.ReplaceLineEndings(" ")}");
    return 1;
}
finally
{
    foreach (MeshNode n in nodes)
    {
        await n.DisposeAsync();
    }

    if (coordinator is not null)
    {
        await coordinator.StopAsync(CancellationToken.None);
        await coordinator.DisposeAsync();
    }

    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    Directory.Delete(folder, recursive: true);
}

MeshNode Track(MeshNode node)
{
    nodes.Add(node);
    return node;
}

static void Check(bool condition, string failure)
{
    if (!condition)
    {
        throw new InvalidOperationException(failure);
    }
}
