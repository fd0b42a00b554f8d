using FsCheck;
using FsCheck.Fluent;
using TunnelMesh.Net.Socks;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Tests.Wire;

namespace TunnelMesh.Net.Tests.Socks;

/// <summary>Random bytes and cut or mutated valid handshakes never crash the proxy nor stop it serving the next client.</summary>
public sealed class Socks5HostileInputTests(SocksMesh mesh) : IClassFixture<SocksMesh>
{
    private static readonly byte[][] ValidHandshakes =
    [
        [5, 1, 0, .. RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.EchoPort), 1, 2, 3],
        [5, 2, 0, 2, .. RawSocksClient.ConnectName("beta.tunnelmesh", SocksMesh.EchoPort)],
        [5, 1, 2, .. RawSocksClient.UserPassword("alice", "s3cret"), .. RawSocksClient.ConnectName(SocksMesh.AddressB.ToString(), SocksMesh.ClosedPort)],
        [5, 1, 2, .. RawSocksClient.UserPassword("alice", "wrong"), .. RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.EchoPort)],
        [5, 1, 0, .. RawSocksClient.ConnectIPv6(SocksMesh.AddressB.MapToIPv6(), SocksMesh.EchoPort)],
    ];

    [Fact]
    public async Task Random_byte_prefixes_never_crash_the_server_nor_stop_it_serving_a_valid_client()
    {
        await using MeshSocks5Server open = await mesh.StartServerAsync(o => o.HandshakeTimeout = TimeSpan.FromSeconds(5));
        await using MeshSocks5Server guarded = await mesh.StartServerAsync(o => (o.Username, o.Password, o.HandshakeTimeout) = ("alice", "s3cret", TimeSpan.FromSeconds(5)));

        // A valid handshake cut anywhere, with random bytes written over it and appended; or plain random bytes.
        var cut = from template in Gen.Elements(ValidHandshakes)
                  from length in Gen.Choose(0, template.Length)
                  from edits in Gen.ListOf(Gen.Zip(Gen.Choose(0, 60), WireGen.Byte), 3)
                  from tail in WireGen.Bytes(16)
                  select Mutate(template, length, edits, tail);
        var gen = from bytes in Gen.OneOf(WireGen.Bytes(300), cut)
                  from auth in Gen.Elements(false, true)
                  select (bytes, auth);

        Prop.ForAll(gen.ToArbitrary(), input =>
        {
            MeshSocks5Server server = input.auth ? guarded : open;
            return Task.Run(() => SendThenServeAsync(server, input.bytes)).GetAwaiter().GetResult();
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(60));

        await TaskTimeouts.Until(() => open.GetStatistics().Active == 0 && guarded.GetStatistics().Active == 0, RawSocksClient.Limit, "every connection is closed");
        MeshSocks5Statistics a = open.GetStatistics();
        MeshSocks5Statistics b = guarded.GetStatistics();
        Assert.True(a.ProtocolErrors + b.ProtocolErrors > 0, "some inputs were protocol errors");
    }

    /// <summary>Sends the bytes, half-closes, waits for the server to close, then checks a valid client is served.</summary>
    private static async Task<bool> SendThenServeAsync(MeshSocks5Server server, byte[] bytes)
    {
        await using (RawSocksClient hostile = await RawSocksClient.ConnectAsync(server.LocalEndPoint))
        {
            if (bytes.Length > 0)
            {
                await hostile.SendAsync(bytes);
            }

            hostile.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            if (!await hostile.IsClosedByServerAsync(drain: true))
            {
                return false;
            }
        }

        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        if (server.RequiresAuthentication)
        {
            if (await client.LoginAsync("alice", "s3cret") != 0)
            {
                return false;
            }
        }
        else
        {
            await client.NoAuthAsync();
        }

        RawSocksClient.Reply reply = await client.RequestAsync(RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.EchoPort));
        if (reply.Code != (byte)Socks5Reply.Succeeded)
        {
            return false;
        }

        await Socks5ProtocolTests.AssertEchoAsync(client, "after " + Convert.ToHexString(bytes));
        return true;
    }

    private static byte[] Mutate(byte[] template, int length, IEnumerable<(int Index, byte Value)> edits, byte[] tail)
    {
        byte[] bytes = [.. template.AsSpan(0, length), .. tail];
        foreach ((int index, byte value) in edits)
        {
            if (index < bytes.Length)
            {
                bytes[index] = value;
            }
        }

        return bytes;
    }
}
