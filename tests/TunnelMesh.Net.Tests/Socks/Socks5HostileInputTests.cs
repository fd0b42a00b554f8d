using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Socks;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Tests.Wire;

namespace TunnelMesh.Net.Tests.Socks;

/// <summary>Random bytes and cut or mutated valid handshakes never crash the proxy nor stop it serving the next client.</summary>
public sealed class Socks5HostileInputTests(SocksMesh mesh) : IClassFixture<SocksMesh>, IAsyncLifetime
{
    private static readonly byte[][] ValidHandshakes =
    [
        [5, 1, 0, .. RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.EchoPort), 1, 2, 3],
        [5, 2, 0, 2, .. RawSocksClient.ConnectName("beta.tunnelmesh", SocksMesh.EchoPort)],
        [5, 1, 2, .. RawSocksClient.UserPassword("alice", "s3cret"), .. RawSocksClient.ConnectName(SocksMesh.AddressB.ToString(), SocksMesh.ClosedPort)],
        [5, 1, 2, .. RawSocksClient.UserPassword("alice", "wrong"), .. RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.EchoPort)],
        [5, 1, 0, .. RawSocksClient.ConnectIPv6(SocksMesh.AddressB.MapToIPv6(), SocksMesh.EchoPort)],
    ];

    private MeshSocks5Server? _open;
    private MeshSocks5Server? _guarded;

    /// <summary>Two proxies for the whole property (one without, one with username/password), started before its first case.</summary>
    public async Task InitializeAsync()
    {
        _open = await mesh.StartServerAsync(o => o.HandshakeTimeout = TimeSpan.FromSeconds(5));
        _guarded = await mesh.StartServerAsync(o => (o.Username, o.Password, o.HandshakeTimeout) = ("alice", "s3cret", TimeSpan.FromSeconds(5)));
    }

    public async Task DisposeAsync()
    {
        if (_open is not null)
        {
            await _open.DisposeAsync();
        }

        if (_guarded is not null)
        {
            await _guarded.DisposeAsync();
        }
    }

    /// <summary>A valid handshake cut anywhere, with random bytes written over it and appended; or plain random bytes; to either proxy.</summary>
    private static Arbitrary<(byte[] Bytes, bool Auth)> HostileInput()
    {
        var cut = from template in Gen.Elements(ValidHandshakes)
                  from length in Gen.Choose(0, template.Length)
                  from edits in Gen.ListOf(Gen.Zip(Gen.Choose(0, 60), WireGen.Byte), 3)
                  from tail in WireGen.Bytes(16)
                  select Mutate(template, length, edits, tail);
        var gen = from bytes in Gen.OneOf(WireGen.Bytes(300), cut)
                  from auth in Gen.Elements(false, true)
                  select (bytes, auth);
        return gen.ToArbitrary();
    }

    [Property(MaxTest = 60)]
    public Property Random_byte_prefixes_never_crash_the_server_nor_stop_it_serving_a_valid_client() =>
        Prop.ForAll(HostileInput(), input =>
        {
            MeshSocks5Server server = input.Auth ? _guarded! : _open!;
            return Task.Run(() => SendThenServeAsync(server, input.Bytes)).GetAwaiter().GetResult();
        });

    [Fact]
    public async Task A_handshake_of_another_socks_version_is_counted_as_a_protocol_error_and_closed()
    {
        MeshSocks5Statistics before = _open!.GetStatistics();
        Assert.True(await SendThenServeAsync(_open, [4, 1, 0, 80, 10, 0, 0, 2, 0]));
        await TaskTimeouts.Until(() => _open.GetStatistics().Active == 0, RawSocksClient.Limit, "every connection is closed");
        Assert.Equal(before.ProtocolErrors + 1, _open.GetStatistics().ProtocolErrors);
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
