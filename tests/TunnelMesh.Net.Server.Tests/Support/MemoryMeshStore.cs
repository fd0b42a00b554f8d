using System.Net;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Support;

/// <summary>
/// An in-memory <see cref="IMeshStore"/> for API tests, honouring the contract: every method atomic
/// under one lock, the lowest free address, name suffixes on clashes, a version bump per node change,
/// and <see cref="WaitForChangeAsync"/> woken by every change.
/// </summary>
public sealed class MemoryMeshStore : IMeshStore
{
    private readonly Lock _gate = new();
    private readonly SortedDictionary<long, AuthKeyRecord> _keys = [];
    private readonly SortedDictionary<long, NodeRecord> _nodes = [];
    private readonly Dictionary<long, string> _requestedNames = [];
    private readonly SortedSet<long> _usedIndexes = [];
    private readonly Dictionary<long, long> _indexOfNode = [];
    private long _nextKeyId = 1;
    private long _nextNodeId = 1;
    private long _version;
    private TaskCompletionSource _changed = NewSignal();

    /// <summary>Calls made to <see cref="JoinAsync"/>.</summary>
    public int JoinCalls { get; private set; }

    public Task InitializeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public Task<AuthKeyRecord> CreateAuthKeyAsync(NewAuthKey key, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var r = new AuthKeyRecord(_nextKeyId++, key.SecretHash, key.Reusable, key.Ephemeral, key.Tags, key.Description, key.Created, key.Expires, null, 0);
            _keys[r.Id] = r;
            return Task.FromResult(r);
        }
    }

    public Task<AuthKeyRecord?> GetAuthKeyAsync(long id, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_keys.GetValueOrDefault(id));
        }
    }

    public Task<IReadOnlyList<AuthKeyRecord>> ListAuthKeysAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<AuthKeyRecord>>([.. _keys.Values]);
        }
    }

    public Task<bool> RevokeAuthKeyAsync(long id, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_keys.TryGetValue(id, out AuthKeyRecord? k))
            {
                return Task.FromResult(false);
            }

            _keys[id] = k with { Revoked = k.Revoked ?? now };
            return Task.FromResult(true);
        }
    }

    public Task<JoinResult> JoinAsync(JoinCommand command, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            JoinCalls++;
            AuthKeyRecord? key = null;
            if (command.AuthKeyId is { } keyId)
            {
                if (!_keys.TryGetValue(keyId, out key))
                {
                    return Result(JoinStatus.KeyNotFound);
                }

                if (key.Revoked is not null)
                {
                    return Result(JoinStatus.KeyRevoked);
                }

                if (key.Expires <= command.Now)
                {
                    return Result(JoinStatus.KeyExpired);
                }

                if (!key.Reusable && key.Uses > 0)
                {
                    return Result(JoinStatus.KeyUsed);
                }
            }

            NodeRecord? known = _nodes.Values.FirstOrDefault(n => n.PublicKey == command.PublicKey);
            if (known is null && key is null)
            {
                return Result(JoinStatus.UnknownNode);
            }

            bool ephemeral = command.Ephemeral || key?.Ephemeral == true;
            if (known is not null)
            {
                string name = known.Name;
                if (_requestedNames[known.Id] != command.Hostname)
                {
                    name = FreeName(command.Hostname, known.Id);
                    _requestedNames[known.Id] = command.Hostname;
                }

                CountUse(key);
                NodeRecord updated = known with
                {
                    Name = name,
                    Endpoints = command.Endpoints,
                    TokenHash = command.TokenHash,
                    Expired = null,
                    Ephemeral = key is null ? known.Ephemeral : ephemeral,
                    Tags = key?.Tags ?? known.Tags,
                    AuthKeyId = key?.Id ?? known.AuthKeyId,
                    Version = Bump(),
                };
                _nodes[known.Id] = updated;
                return Task.FromResult(new JoinResult(JoinStatus.Rejoined, updated));
            }

            long index = 0;
            foreach (long used in _usedIndexes)
            {
                if (used != index)
                {
                    break;
                }

                index++;
            }

            if (index >= NameRules.UsableCount(command.Prefix4))
            {
                return Result(JoinStatus.AddressesExhausted);
            }

            CountUse(key);
            _usedIndexes.Add(index);
            IPAddress a4 = NameRules.Address4At(command.Prefix4, index);
            long id = _nextNodeId++;
            var node = new NodeRecord(
                id,
                FreeName(command.Hostname, id),
                command.PublicKey,
                a4,
                NameRules.Address6For(command.Prefix6, a4),
                command.Endpoints,
                key!.Tags,
                ephemeral,
                key.Id,
                command.TokenHash,
                command.Now,
                null,
                false,
                null,
                Bump());
            _nodes[id] = node;
            _requestedNames[id] = command.Hostname;
            _indexOfNode[id] = index;
            return Task.FromResult(new JoinResult(JoinStatus.Joined, node));
        }
    }

    public Task<NodeRecord?> GetNodeAsync(long id, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_nodes.GetValueOrDefault(id));
        }
    }

    public Task<NodeRecord?> GetNodeByKeyAsync(string publicKey, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_nodes.Values.FirstOrDefault(n => n.PublicKey == publicKey));
        }
    }

    public Task<IReadOnlyList<NodeRecord>> ListNodesAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<NodeRecord>>([.. _nodes.Values]);
        }
    }

    public Task<RenameStatus> RenameNodeAsync(long id, string name, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_nodes.TryGetValue(id, out NodeRecord? n))
            {
                return Task.FromResult(RenameStatus.NotFound);
            }

            if (_nodes.Values.Any(o => o.Id != id && o.Name == name))
            {
                return Task.FromResult(RenameStatus.NameTaken);
            }

            if (n.Name != name)
            {
                _nodes[id] = n with { Name = name, Version = Bump() };
                _requestedNames[id] = name;
            }

            return Task.FromResult(RenameStatus.Renamed);
        }
    }

    public Task<bool> DeleteNodeAsync(long id, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_nodes.Remove(id, out NodeRecord? n))
            {
                return Task.FromResult(false);
            }

            _usedIndexes.Remove(IndexOf(n));
            _requestedNames.Remove(id);
            Bump();
            return Task.FromResult(true);
        }
    }

    public Task<bool> ExpireNodeAsync(long id, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        Change(id, n => n with { Expired = n.Expired ?? now });

    public Task<bool> UpdateEndpointsAsync(long id, IReadOnlyList<string> endpoints, CancellationToken cancellationToken = default) =>
        Change(id, n => n with { Endpoints = endpoints });

    public Task<bool> SetOnlineAsync(long id, bool online, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        Change(id, n => n with { Online = online, LastSeen = now });

    public Task<int> DeleteEphemeralOfflineAsync(DateTimeOffset offlineBefore, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            List<NodeRecord> gone = [.. _nodes.Values.Where(n => n.Ephemeral && !n.Online && (n.LastSeen ?? n.Created) < offlineBefore)];
            foreach (NodeRecord n in gone)
            {
                _nodes.Remove(n.Id);
                _usedIndexes.Remove(IndexOf(n));
                _requestedNames.Remove(n.Id);
                Bump();
            }

            return Task.FromResult(gone.Count);
        }
    }

    public Task<long> GetVersionAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_version);
        }
    }

    public async Task<long> WaitForChangeAsync(long afterVersion, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task signal;
            lock (_gate)
            {
                if (_version > afterVersion)
                {
                    return _version;
                }

                signal = _changed.Task;
            }

            await signal.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private Task<bool> Change(long id, Func<NodeRecord, NodeRecord> change)
    {
        lock (_gate)
        {
            if (!_nodes.TryGetValue(id, out NodeRecord? n))
            {
                return Task.FromResult(false);
            }

            _nodes[id] = change(n) with { Version = Bump() };
            return Task.FromResult(true);
        }
    }

    private static Task<JoinResult> Result(JoinStatus status) => Task.FromResult(new JoinResult(status, null));

    private void CountUse(AuthKeyRecord? key)
    {
        if (key is not null)
        {
            _keys[key.Id] = key with { Uses = key.Uses + 1 };
        }
    }

    private string FreeName(string requested, long selfId)
    {
        bool Taken(string name) => _nodes.Values.Any(n => n.Id != selfId && n.Name == name);
        if (!Taken(requested))
        {
            return requested;
        }

        for (int i = 2; ; i++)
        {
            string candidate = NameRules.WithSuffix(requested, i);
            if (!Taken(candidate))
            {
                return candidate;
            }
        }
    }

    private long IndexOf(NodeRecord n)
    {
        _indexOfNode.Remove(n.Id, out long index);
        return index;
    }

    // Called under the lock: the new version, and every waiter woken.
    private long Bump()
    {
        _version++;
        TaskCompletionSource old = _changed;
        _changed = NewSignal();
        old.TrySetResult();
        return _version;
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
