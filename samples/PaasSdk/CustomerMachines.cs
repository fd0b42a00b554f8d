using System.Globalization;
using TunnelMesh.Net;
using TunnelMesh.Net.Admin;
using TunnelMesh.Net.Control;

namespace PaasSdk;

/// <summary>
/// One customer machine the PaaS has enrolled: the customer, the name the machine joins as, and the
/// one-shot key it joins with. <see cref="ToString"/> leaves the key out, so an enrollment can be logged.
/// </summary>
/// <param name="Customer">The customer's id, also the machine's tag (<c>tag:&lt;customer&gt;</c>).</param>
/// <param name="MachineName">The mesh name the machine joins as (unique in the mesh: it includes the customer).</param>
/// <param name="KeyId">The auth key's id (to revoke it if the machine never joins).</param>
/// <param name="AuthKey">The one-shot key: hand it to the customer's machine only.</param>
/// <param name="Instructions">What the customer runs on the machine (the key shown as <c>&lt;auth key&gt;</c>).</param>
public sealed record Enrollment(string Customer, string MachineName, long KeyId, string AuthKey, string Instructions)
{
    /// <summary>The customer's tag, which the machine carries in the mesh.</summary>
    public string Tag => "tag:" + Customer;

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{MachineName} of {Customer} (key {KeyId})");
}

/// <summary>
/// The PaaS side of "bring your own machine": enroll a customer's machine (an ephemeral, one-shot,
/// tagged auth key), wait until it is online, call its services over the mesh by name, and remove it.
/// Everything goes through <see cref="MeshAdminClient"/> (the coordinator's admin API) and the
/// PaaS's own <see cref="MeshNode"/>; the customer's machine only ever gets its one key.
/// </summary>
public sealed class CustomerMachines : IDisposable
{
    private static readonly TimeSpan PeerPoll = TimeSpan.FromMilliseconds(50);

    private readonly MeshAdminClient _admin;
    private readonly MeshNode _paas;
    private readonly Uri _coordinatorUrl;
    private readonly HttpClient _http;

    /// <param name="admin">The coordinator's admin API.</param>
    /// <param name="paas">The PaaS's own node in the mesh (it calls the customers' machines).</param>
    /// <param name="coordinatorUrl">The coordinator's URL, as the customers' machines reach it.</param>
    public CustomerMachines(MeshAdminClient admin, MeshNode paas, Uri coordinatorUrl)
    {
        _admin = admin;
        _paas = paas;
        _coordinatorUrl = coordinatorUrl;
        _http = paas.CreateHttpClient();
        _http.Timeout = TimeSpan.FromSeconds(30);
    }

    /// <summary>
    /// Creates the key a customer's machine joins with: one-shot (a copy of it is worthless after the
    /// join), ephemeral (the machine is removed after being offline for the coordinator's ephemeral
    /// timeout), tagged with the customer, valid for <paramref name="keyLifetime"/>.
    /// </summary>
    public async Task<Enrollment> EnrollAsync(string customer, string machineName, TimeSpan keyLifetime, CancellationToken ct)
    {
        CreatedAuthKey key = await _admin.CreateAuthKeyAsync(new MeshAuthKeyOptions
        {
            Reusable = false,
            Ephemeral = true,
            ExpiresIn = keyLifetime,
            Tags = ["tag:" + customer],
            Description = $"{customer}: {machineName}",
        }, ct);
        string instructions = $"tunnelmesh join --server {_coordinatorUrl} --auth-key <auth key> --hostname {machineName} --ephemeral";
        return new Enrollment(customer, machineName, key.Info.Id, key.Key, instructions);
    }

    /// <summary>
    /// Waits until the machine is online at the coordinator, carries the customer's tag, and is in the
    /// PaaS node's peer map (so it can be called by name).
    /// </summary>
    public async Task<MeshNodeInfo> WaitOnlineAsync(Enrollment enrollment, TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        MeshNodeInfo node = await _admin.WaitForNodeAsync(enrollment.MachineName, online: true, timeout, deadline.Token);
        if (!node.Tags.Contains(enrollment.Tag, StringComparer.Ordinal))
        {
            throw new InvalidOperationException($"the node named {node.Name} does not carry {enrollment.Tag} (tags: {string.Join(", ", node.Tags)}): not the customer's machine");
        }

        NodePublicKey key = NodePublicKey.Parse(node.PublicKey);
        try
        {
            while (_paas.GetStatus().FindPeer(key) is null)
            {
                await Task.Delay(PeerPoll, deadline.Token); // the peer map is pushed within a second of a change
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"{node.Name} is online but not in the PaaS node's peer map after {timeout.TotalSeconds:0} s");
        }

        return node;
    }

    /// <summary>GET <c>http://&lt;machine&gt;:&lt;port&gt;&lt;path&gt;</c> over the mesh, by name; the answer's body, or an exception with the status.</summary>
    public async Task<string> CallAsync(Enrollment enrollment, int port, string path, CancellationToken ct)
    {
        var uri = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{enrollment.MachineName}:{port}{path}"));
        using HttpResponseMessage response = await _http.GetAsync(uri, ct);
        string body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"{uri} answered {(int)response.StatusCode}: {body.Trim()}", null, response.StatusCode);
        }

        return body;
    }

    /// <summary>
    /// Removes the machine from the mesh: deletes its node (if it carries the customer's tag), revokes
    /// the key if it was never used, and waits until the PaaS node's peer map has dropped the machine.
    /// </summary>
    /// <returns>The node removed, or null when the machine had never joined.</returns>
    public async Task<MeshNodeInfo?> RemoveAsync(Enrollment enrollment, TimeSpan timeout, CancellationToken ct)
    {
        MeshNodeInfo? node = await _admin.FindNodeAsync(enrollment.MachineName, ct);
        if (node is not null && node.Tags.Contains(enrollment.Tag, StringComparer.Ordinal))
        {
            await _admin.DeleteNodeAsync(node.Id, ct);
        }
        else
        {
            node = null;
        }

        AuthKeyInfo? key = (await _admin.ListAuthKeysAsync(ct)).FirstOrDefault(k => k.Id == enrollment.KeyId);
        if (key is { Revoked: null, Uses: 0 })
        {
            await _admin.RevokeAuthKeyAsync(key.Id, ct); // an enrollment the customer never used
        }

        if (node is not null)
        {
            NodePublicKey removed = NodePublicKey.Parse(node.PublicKey);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(timeout);
            try
            {
                while (_paas.GetStatus().FindPeer(removed) is not null)
                {
                    await Task.Delay(PeerPoll, deadline.Token);
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException($"{node.Name} was deleted but is still in the PaaS node's peer map after {timeout.TotalSeconds:0} s");
            }
        }

        return node;
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}
