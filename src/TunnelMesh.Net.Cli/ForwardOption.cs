using System.CommandLine;
using System.Globalization;
using System.Net;
using TunnelMesh.Net.Forwarding;

namespace TunnelMesh.Net.Cli;

/// <summary>One <c>--forward PORT=HOST:PORT</c> of <c>tunnelmesh join</c>: a mesh port and the host's service behind it.</summary>
internal sealed record ForwardSpec(int MeshPort, EndPoint Target, string TargetText);

/// <summary>The repeatable <c>--forward</c> option of <c>tunnelmesh join</c>.</summary>
internal static class ForwardOption
{
    public static Option<List<ForwardSpec>> Create() => new("--forward")
    {
        Description = "Put a TCP service of this host on the mesh: PORT=HOST:PORT forwards connections to PORT on this node's mesh address "
            + "to HOST:PORT on this host's own network, e.g. --forward 80=127.0.0.1:3000. Repeatable.",
        HelpName = "PORT=HOST:PORT",
        Arity = ArgumentArity.ZeroOrMore,
        AllowMultipleArgumentsPerToken = false,
        DefaultValueFactory = _ => [],
        CustomParser = r =>
        {
            var specs = new List<ForwardSpec>();
            foreach (var token in r.Tokens)
            {
                if (Parse(token.Value, out var spec) is { } error)
                {
                    r.AddError("--forward: " + error);
                    return specs;
                }

                if (specs.Find(s => s.MeshPort == spec!.MeshPort) is not null)
                {
                    r.AddError($"--forward: mesh port {spec!.MeshPort} is forwarded twice");
                    return specs;
                }

                specs.Add(spec!);
            }

            return specs;
        },
    };

    /// <summary>Parses <c>PORT=HOST:PORT</c>; the error text, or null with <paramref name="spec"/> set.</summary>
    internal static string? Parse(string text, out ForwardSpec? spec)
    {
        spec = null;
        int eq = text.IndexOf('=', StringComparison.Ordinal);
        if (eq < 0)
        {
            return $"'{text}' is not PORT=HOST:PORT (e.g. 80=127.0.0.1:3000)";
        }

        if (!int.TryParse(text.AsSpan(0, eq), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            return $"'{text[..eq]}' in '{text}' is not a mesh port (1-65535)";
        }

        string target = text[(eq + 1)..];
        try
        {
            spec = new ForwardSpec(port, MeshPortForwardOptions.ParseTarget(target), target);
            return null;
        }
        catch (MeshConfigurationException)
        {
            return $"'{target}' in '{text}' is not HOST:PORT, IPv4:PORT or [IPv6]:PORT";
        }
    }
}

/// <summary>The <c>--socks5 [ADDRESS:]PORT</c> option of <c>tunnelmesh join</c>: a SOCKS5 proxy into the mesh on a loopback port.</summary>
internal static class Socks5Option
{
    public static Option<IPEndPoint?> Create() => new("--socks5")
    {
        Description = "Run a SOCKS5 proxy into the mesh on this loopback endpoint (PORT, or ADDRESS:PORT with a loopback address), "
            + "so curl --socks5-hostname 127.0.0.1:1080 http://NAME/ and browsers reach mesh services by name. Port 0 picks a free one.",
        HelpName = "[ADDRESS:]PORT",
        CustomParser = r =>
        {
            string text = r.Tokens.Single().Value;
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port <= 65535)
            {
                return new IPEndPoint(IPAddress.Loopback, port);
            }

            if (text.Contains(':', StringComparison.Ordinal) && IPEndPoint.TryParse(text, out var endPoint))
            {
                if (!IPAddress.IsLoopback(endPoint.Address))
                {
                    r.AddError($"--socks5: {endPoint.Address} is not a loopback address (anyone who reaches the proxy reaches the mesh)");
                    return null;
                }

                return endPoint;
            }

            r.AddError($"--socks5: '{text}' is not PORT or ADDRESS:PORT (e.g. 1080 or 127.0.0.1:1080)");
            return null;
        },
    };
}
