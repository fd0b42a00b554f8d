using SidecarGateway;

namespace TunnelMesh.Net.Samples.Tests.Gateway;

/// <summary>Routing of a request's host and raw target to node, port and upstream path.</summary>
public sealed class GatewayRouterTests
{
    private static readonly GatewayOptions Options = CreateOptions();

    private static GatewayOptions CreateOptions()
    {
        var o = new GatewayOptions { DefaultPort = 8080 };
        o.Hosts["grafana.example.com"] = "http://grafana:3000";
        o.Hosts["api.example.com"] = "http://api/v2/";
        o.Hosts["grpc.example.com"] = "h2c://grpc:5001";
        o.Hosts["h2.example.com"] = "h2c://h2";
        return o;
    }

    [Theory]
    [InlineData("/homelab/rest?q=1", "homelab", 8080, "/rest?q=1", "/homelab")]
    [InlineData("/homelab", "homelab", 8080, "/", "/homelab")]
    [InlineData("/homelab?x=y", "homelab", 8080, "/?x=y", "/homelab")]
    [InlineData("/homelab:3000/a/b%2Fc", "homelab", 3000, "/a/b%2Fc", "/homelab:3000")]
    [InlineData("/homelab%3A3000/x", "homelab", 3000, "/x", "/homelab%3A3000")]
    [InlineData("/nas.tunnelmesh/", "nas.tunnelmesh", 8080, "/", "/nas.tunnelmesh")]
    [InlineData("/100.64.0.7:81/x", "100.64.0.7", 81, "/x", "/100.64.0.7:81")]
    public void Path_mode_takes_the_node_and_port_from_the_first_segment(string target, string node, int port, string path, string prefix)
    {
        Assert.Equal(GatewayRouteKind.Proxy, GatewayRouter.Route(Options, "gateway.example.com", target, out var route, out _));
        Assert.Equal(new GatewayRoute(node, port, path, prefix), route);
    }

    [Theory]
    [InlineData("grafana.example.com", "/d/abc?from=1", "grafana", 3000, "/d/abc?from=1")]
    [InlineData("GRAFANA.example.com", "/homelab/x", "grafana", 3000, "/homelab/x")]
    [InlineData("api.example.com", "/users/1", "api", 80, "/v2/users/1")]
    [InlineData("api.example.com", "/", "api", 80, "/v2/")]
    public void A_configured_host_maps_the_whole_path_below_its_target(string host, string target, string node, int port, string path)
    {
        Assert.Equal(GatewayRouteKind.Proxy, GatewayRouter.Route(Options, host, target, out var route, out _));
        Assert.Equal(new GatewayRoute(node, port, path, null), route);
    }

    [Theory]
    [InlineData("grpc.example.com", "/greet.Greeter/SayHello", "grpc", 5001)]
    [InlineData("h2.example.com", "/x", "h2", 80)]
    public void An_h2c_target_is_spoken_to_in_HTTP2(string host, string target, string node, int port)
    {
        Assert.Equal(GatewayRouteKind.Proxy, GatewayRouter.Route(Options, host, target, out var route, out _));
        Assert.Equal(new GatewayRoute(node, port, target, null, Http2: true), route);
        Assert.Empty(Options.Validate());
    }

    [Fact]
    public void Path_mode_speaks_HTTP11_unless_PathModeH2c_is_set()
    {
        Assert.Equal(GatewayRouteKind.Proxy, GatewayRouter.Route(Options, "gateway", "/homelab/", out var http11, out _));
        Assert.False(http11!.Http2);
        var h2c = new GatewayOptions { PathModeH2c = true };
        Assert.Equal(GatewayRouteKind.Proxy, GatewayRouter.Route(h2c, "gateway", "/homelab/", out var http2, out _));
        Assert.True(http2!.Http2);
    }

    [Theory]
    [InlineData("/homelab:0/")]
    [InlineData("/homelab:65536/")]
    [InlineData("/homelab:http/")]
    [InlineData("/bad%20name/")]
    [InlineData("/a%0D%0AInjected:%201/")]
    [InlineData("/-x/")]
    [InlineData("/a..b/")]
    public void A_segment_that_is_no_node_or_port_is_a_bad_request(string target)
    {
        Assert.Equal(GatewayRouteKind.BadRequest, GatewayRouter.Route(Options, "gateway", target, out var route, out string? error));
        Assert.Null(route);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void The_root_is_the_index_and_path_mode_can_be_switched_off()
    {
        Assert.Equal(GatewayRouteKind.Index, GatewayRouter.Route(Options, "gateway", "/", out _, out _));
        Assert.Equal(GatewayRouteKind.Index, GatewayRouter.Route(Options, "gateway", "/?x", out _, out _));
        var hostsOnly = new GatewayOptions { Routes = false };
        hostsOnly.Hosts["a.example"] = "http://a";
        Assert.Equal(GatewayRouteKind.NotFound, GatewayRouter.Route(hostsOnly, "gateway", "/homelab/", out _, out _));
        Assert.Equal(GatewayRouteKind.Proxy, GatewayRouter.Route(hostsOnly, "a.example", "/homelab/", out var route, out _));
        Assert.Equal("a", route!.Node);
    }

    [Fact]
    public void Options_validation_names_the_bad_keys()
    {
        var o = new GatewayOptions { DefaultPort = 0, ConnectTimeout = TimeSpan.Zero, ActivityTimeout = TimeSpan.Zero };
        o.Hosts["x.example"] = "https://x";
        var problems = o.Validate();
        Assert.Equal(4, problems.Count);
        Assert.Contains(problems, p => p.Contains("Gateway:DefaultPort", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Gateway:ActivityTimeout", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Gateway:Hosts:x.example", StringComparison.Ordinal));
        Assert.Empty(new GatewayOptions().Validate());
    }
}
