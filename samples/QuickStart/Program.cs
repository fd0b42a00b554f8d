// QuickStart: an embedded coordinator (ASP.NET Core on 127.0.0.1, SQLite in a temporary folder)
// and three mesh nodes in one process. The nodes join with one auth key, learn each other from the
// pushed peer map, and talk by name over WireGuard and their own userspace TCP/IP stacks: ping,
// a 1 MiB TCP echo, a DNS question to a node's mesh DNS server. No TUN device, no root.
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net;
using TunnelMesh.Net.Control;

string folder = Directory.CreateTempSubdirectory("tunnelmesh-quickstart").FullName;
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
var ct = timeout.Token;
try
{
    // 1. The coordinator: peer registry, addresses, names, the peer-map stream and the relay.
    string admin = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    builder.Services.AddMeshCoordinator(o =>
    {
        o.AdminCredential = admin;
        o.SqlitePath = Path.Combine(folder, "coordinator.db");
    });
    await using var coordinator = builder.Build();
    coordinator.MapMeshCoordinator();
    await coordinator.StartAsync(ct);
    var url = new Uri(coordinator.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    Console.WriteLine($"coordinator on {url} (SQLite in {folder})");

    // 2. An auth key, through the admin API (what `tunnelmesh authkey create --reusable` does).
    using var http = new HttpClient { BaseAddress = url };
    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
    using var created = await http.PostAsJsonAsync("/api/v1/authkeys", new CreateAuthKeyRequest(Reusable: true, Description: "quickstart"), ct);
    created.EnsureSuccessStatusCode();
    string authKey = (await created.Content.ReadFromJsonAsync<CreatedAuthKey>(ct))!.Key;

    // 3. Three nodes join with it. Each gets an address and a name from the coordinator.
    var nodes = new List<MeshNode>();
    foreach (string name in new[] { "alpha", "beta", "gamma" })
    {
        var node = new MeshNode(new MeshNodeOptions { ControlUrl = url, AuthKey = authKey, Hostname = name, ListenAddress = IPAddress.Loopback });
        nodes.Add(node);
        await node.StartAsync(ct);
        var self = node.GetStatus().Self;
        Console.WriteLine($"{self.Fqdn} joined: {string.Join(", ", self.Addresses)}, key {node.PublicKey}");
    }

    try
    {
        var (alpha, beta, gamma) = (nodes[0], nodes[1], nodes[2]);
        foreach (var node in nodes)
        {
            while (node.GetStatus().Peers.Count < 2)
            {
                await Task.Delay(20, ct); // the peer map is pushed within a second of each join
            }
        }

        // 4. Ping by name (the first one includes the WireGuard handshake).
        var betaAddress = alpha.GetStatus().FindPeer("beta")!.Addresses[0];
        for (int i = 0; i < 3; i++)
        {
            var rtt = await alpha.PingAsync(betaAddress, TimeSpan.FromSeconds(5), ct);
            Console.WriteLine($"ping alpha -> beta ({betaAddress}): {rtt.TotalMilliseconds:F3} ms via {alpha.GetStatus().FindPeer("beta")!.Path}");
        }

        // 5. TCP by name: gamma listens on port 80 of its mesh address, alpha dials "gamma.tunnelmesh".
        await using (var listener = await gamma.ListenAsync(80, ct))
        {
            var accepting = listener.AcceptAsync(ct).AsTask();
            await using var client = await alpha.DialAsync("gamma.tunnelmesh", 80, ct);
            await using var server = await accepting;
            Console.WriteLine($"TCP {client.LocalEndPoint} -> {client.RemoteEndPoint} (gamma.tunnelmesh) established");
            var request = new byte[1 << 20];
            Random.Shared.NextBytes(request);
            var echo = Task.Run(async () =>
            {
                await server.CopyToAsync(server, ct); // echo until alpha half-closes
                await server.ShutdownSendAsync(ct);
            }, ct);
            var write = Task.Run(async () =>
            {
                await client.WriteAsync(request, ct);
                await client.ShutdownSendAsync(ct);
            }, ct);
            var back = new MemoryStream();
            await client.CopyToAsync(back, ct);
            await Task.WhenAll(echo, write);
            bool same = back.ToArray().AsSpan().SequenceEqual(request);
            Console.WriteLine($"TCP echo: sent {request.Length} B, got {back.Length} B back, {(same ? "identical" : "DIFFERENT")}");
            if (!same)
            {
                return 1;
            }
        }

        // 6. DNS on the mesh: alpha asks beta's DNS server (UDP port 53 of beta's mesh address) for gamma.
        await using (var socket = alpha.ListenUdp())
        {
            byte[] query = DnsQuery("gamma.tunnelmesh");
            await socket.SendToAsync(query, new IPEndPoint(betaAddress, 53), ct);
            var answer = new byte[512];
            var got = await socket.ReceiveFromAsync(answer, ct);
            // The answer's last 4 bytes are the A record's address (one question, one answer).
            var address = new IPAddress(answer.AsSpan(got.ReceivedBytes - 4, 4));
            int rcode = answer[3] & 0x0F;
            Console.WriteLine($"DNS: beta's server says gamma.tunnelmesh is {address} (rcode {rcode}, {got.ReceivedBytes} B)");
            if (rcode != 0 || !address.Equals(gamma.Address))
            {
                return 1;
            }
        }

        // 7. What each node sees.
        foreach (var node in nodes)
        {
            var status = node.GetStatus();
            foreach (var peer in status.Peers)
            {
                Console.WriteLine($"{status.Self.Name,-6} sees {peer.Name,-6} {peer.Addresses[0],-12} path {peer.Path,-6} last handshake {peer.LastHandshake?.ToString("HH:mm:ss") ?? "-"}");
            }
        }
    }
    finally
    {
        foreach (var node in nodes)
        {
            await node.DisposeAsync();
        }
    }

    await coordinator.StopAsync(CancellationToken.None);
    Console.WriteLine("QuickStart finished.");
    return 0;
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    Directory.Delete(folder, recursive: true);
}

// A minimal DNS query for an A record (RFC 1035: header, one question, recursion desired).
static byte[] DnsQuery(string name)
{
    var q = new List<byte> { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
    foreach (string label in name.Split('.'))
    {
        q.Add((byte)label.Length);
        q.AddRange(Encoding.ASCII.GetBytes(label));
    }

    q.AddRange([0, 0, 1, 0, 1]); // root, type A, class IN
    return [.. q];
}
