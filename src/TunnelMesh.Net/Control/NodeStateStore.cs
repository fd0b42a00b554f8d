using System.Text;
using System.Text.Json;

namespace TunnelMesh.Net.Control;

/// <summary>What a node remembers of its last join: itself as the coordinator recorded it, and the mesh settings.</summary>
/// <param name="Self">The node's record (addresses, name).</param>
/// <param name="Mesh">The mesh's prefixes and DNS suffix.</param>
internal sealed record SavedSelf(MeshNodeInfo Self, MeshInfo Mesh);

/// <summary>
/// The state directory of a node in control mode: its private key (<c>node.key</c>), its node token
/// (<c>node.token</c>), its last join answer without the token (<c>self.json</c>) and its last peer
/// map (<c>peers.json</c>). The directory is created with mode 0700 and every file is written with
/// mode 0600 to a temporary file that is flushed and then renamed over the old one, so a crash
/// leaves the old or the new version, never half of one. Without a directory nothing is kept.
/// </summary>
internal sealed class NodeStateStore
{
    internal const string KeyFile = "node.key";
    internal const string TokenFile = "node.token";
    internal const string SelfFile = "self.json";
    internal const string MapFile = "peers.json";

    private const UnixFileMode FilePermissions = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode DirectoryPermissions = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public NodeStateStore(string? directory) => Directory = directory is null ? null : Path.GetFullPath(directory);

    /// <summary>The directory, or null when nothing is kept.</summary>
    public string? Directory { get; }

    /// <summary>Creates the directory (mode 0700) if it does not exist.</summary>
    public void EnsureDirectory()
    {
        if (Directory is null || System.IO.Directory.Exists(Directory))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(Directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(Directory, DirectoryPermissions);
        }
    }

    public NodePrivateKey? LoadKey()
    {
        string? text = ReadText(KeyFile);
        if (text is null)
        {
            return null;
        }

        return NodePrivateKey.TryParse(text.Trim(), out var key)
            ? key
            : throw new MeshConfigurationException($"{nameof(MeshNodeOptions)}.{nameof(MeshNodeOptions.StateDirectory)}", $"{Path.Combine(Directory!, KeyFile)} does not hold a base64 private key.");
    }

    public void SaveKey(NodePrivateKey key) => WriteAtomic(KeyFile, Encoding.ASCII.GetBytes(key.ToBase64() + "\n"));

    public string? LoadToken() => ReadText(TokenFile)?.Trim() is { Length: > 0 } token ? token : null;

    public void SaveToken(string token) => WriteAtomic(TokenFile, Encoding.UTF8.GetBytes(token + "\n"));

    /// <summary>Forgets the node token (the coordinator refused it).</summary>
    public void DeleteToken()
    {
        if (Directory is not null)
        {
            File.Delete(Path.Combine(Directory, TokenFile));
        }
    }

    public SavedSelf? LoadSelf() => ReadJson<SavedSelf>(SelfFile);

    public void SaveSelf(SavedSelf self) => WriteAtomic(SelfFile, JsonSerializer.SerializeToUtf8Bytes(self, ControlJson.Options));

    public PeerMapMessage? LoadMap() => ReadJson<PeerMapMessage>(MapFile);

    public void SaveMap(PeerMapMessage map) => WriteAtomic(MapFile, JsonSerializer.SerializeToUtf8Bytes(map, ControlJson.Options));

    private string? ReadText(string name)
    {
        if (Directory is null)
        {
            return null;
        }

        string path = Path.Combine(Directory, name);
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }

    // A damaged JSON file counts as absent: the node then needs the coordinator, as on a first start.
    private T? ReadJson<T>(string name)
        where T : class
    {
        string? text = ReadText(name);
        if (text is null)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<T>(text, ControlJson.Options);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private void WriteAtomic(string name, ReadOnlySpan<byte> content)
    {
        if (Directory is null)
        {
            return;
        }

        EnsureDirectory();
        string path = Path.Combine(Directory, name);
        string temp = Path.Combine(Directory, $".{name}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FilePermissions;
        }

        try
        {
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
