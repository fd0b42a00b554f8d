using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace SidecarGateway;

/// <summary>Registration and endpoint mapping of the <see cref="MeshGateway"/>.</summary>
public static class MeshGatewayEndpoints
{
    /// <summary>Registers the gateway with options bound from <paramref name="section"/> (validated at start).</summary>
    public static IServiceCollection AddMeshGateway(this IServiceCollection services, IConfiguration section, Action<GatewayOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(section);
        var builder = services.AddOptions<GatewayOptions>().Bind(section);
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>());
        builder.ValidateOnStart();
        services.AddHttpForwarder();
        services.TryAddSingleton<MeshGateway>();
        return services;
    }

    /// <summary>
    /// Maps every method on <paramref name="pattern"/> (default: every path) to the gateway. More
    /// specific endpoints (such as <c>/healthz</c>) still win over the catch-all.
    /// </summary>
    public static IEndpointConventionBuilder MapMeshGateway(this IEndpointRouteBuilder endpoints, string pattern = "/{**path}")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.Map(pattern, context => context.RequestServices.GetRequiredService<MeshGateway>().HandleAsync(context))
            .WithDisplayName("mesh gateway");
    }

    private sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
    {
        public ValidateOptionsResult Validate(string? name, GatewayOptions options)
        {
            var problems = options.Validate();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
