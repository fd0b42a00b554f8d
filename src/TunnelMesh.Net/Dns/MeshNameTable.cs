using System.Collections.Frozen;
using System.Net;

namespace TunnelMesh.Net.Dns;

/// <summary>One mesh name: the node's label, and its addresses (IPv4 first).</summary>
/// <param name="Name">The host label (lowercase), e.g. <c>laptop</c>.</param>
/// <param name="Addresses">Its mesh addresses.</param>
internal sealed record MeshName(string Name, IReadOnlyList<IPAddress> Addresses);

/// <summary>
/// The names of the mesh as a node knows them (itself and its peers, from the coordinator's peer
/// map): resolves <c>name</c> and <c>name.suffix</c> (case-insensitive, a trailing dot allowed) to
/// addresses and addresses back to the fully qualified name. Replaced as a whole on each map
/// change; lookups are lock-free reads of an immutable snapshot, safe from any thread.
/// </summary>
internal sealed class MeshNameTable
{
    private Snapshot _snapshot;

    /// <summary>Creates an empty table for names under <paramref name="suffix"/>.</summary>
    public MeshNameTable(string suffix = "tunnelmesh")
    {
        _snapshot = new Snapshot(Normalize(suffix), FrozenDictionary<string, MeshName>.Empty, FrozenDictionary<IPAddress, MeshName>.Empty);
    }

    /// <summary>The DNS suffix, lowercase, without dots at either end.</summary>
    public string Suffix => Volatile.Read(ref _snapshot).Suffix;

    /// <summary>How many names the table holds.</summary>
    public int Count => Volatile.Read(ref _snapshot).ByName.Count;

    /// <summary>Raised after <see cref="Replace"/> changed the table.</summary>
    public event Action? Changed;

    /// <summary>Replaces every name (and the suffix, when given). Later duplicates of a name or address lose.</summary>
    public void Replace(IEnumerable<MeshName> names, string? suffix = null)
    {
        var byName = new Dictionary<string, MeshName>(StringComparer.Ordinal);
        var byAddress = new Dictionary<IPAddress, MeshName>();
        foreach (var n in names)
        {
            string key = Normalize(n.Name);
            if (key.Length == 0 || !byName.TryAdd(key, n with { Name = key }))
            {
                continue;
            }

            foreach (var a in n.Addresses)
            {
                byAddress.TryAdd(a, byName[key]);
            }
        }

        Volatile.Write(ref _snapshot, new Snapshot(suffix is null ? Suffix : Normalize(suffix), byName.ToFrozenDictionary(StringComparer.Ordinal), byAddress.ToFrozenDictionary()));
        Changed?.Invoke();
    }

    /// <summary>
    /// Resolves <c>name</c>, <c>name.suffix</c> or <c>name.suffix.</c> (any case) to the node's
    /// addresses. False for names outside the mesh and for unknown names.
    /// </summary>
    public bool TryResolve(string host, out IReadOnlyList<IPAddress> addresses)
    {
        var s = Volatile.Read(ref _snapshot);
        string h = Normalize(host);
        if (h.EndsWith("." + s.Suffix, StringComparison.Ordinal))
        {
            h = h[..^(s.Suffix.Length + 1)];
        }

        if (s.ByName.TryGetValue(h, out var n))
        {
            addresses = n.Addresses;
            return true;
        }

        addresses = [];
        return false;
    }

    /// <summary>Whether <paramref name="host"/> is under the mesh suffix (or is the suffix itself).</summary>
    public bool IsInMesh(string host)
    {
        string h = Normalize(host);
        string suffix = Suffix;
        return h == suffix || h.EndsWith("." + suffix, StringComparison.Ordinal);
    }

    /// <summary>The fully qualified name (<c>name.suffix</c>, no trailing dot) of the node with this address.</summary>
    public bool TryReverse(IPAddress address, out string fqdn)
    {
        var s = Volatile.Read(ref _snapshot);
        if (s.ByAddress.TryGetValue(address, out var n))
        {
            fqdn = n.Name + "." + s.Suffix;
            return true;
        }

        fqdn = "";
        return false;
    }

    private static string Normalize(string host) => host.Trim().TrimEnd('.').ToLowerInvariant();

    private sealed record Snapshot(string Suffix, FrozenDictionary<string, MeshName> ByName, FrozenDictionary<IPAddress, MeshName> ByAddress);
}
