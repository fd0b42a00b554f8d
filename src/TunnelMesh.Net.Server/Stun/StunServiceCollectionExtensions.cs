using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Server.Stun;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the coordinator's STUN responder.</summary>
public static class StunServiceCollectionExtensions
{
    /// <summary>
    /// Adds a hosted STUN responder (RFC 5389 binding) on UDP <see cref="StunOptions.Port"/>
    /// (default 3478). Options are validated when the host starts; a bad one names itself.
    /// Calling it twice registers one responder.
    /// </summary>
    public static IServiceCollection AddMeshStun(this IServiceCollection services, Action<StunOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<StunOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StunOptions>, StunOptionsValidator>());
        services.TryAddSingleton<StunResponder>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, StunResponder>(sp => sp.GetRequiredService<StunResponder>()));
        return services;
    }

    private sealed class StunOptionsValidator : IValidateOptions<StunOptions>
    {
        public ValidateOptionsResult Validate(string? name, StunOptions options) =>
            options.Validate() is { } error ? ValidateOptionsResult.Fail(error) : ValidateOptionsResult.Success;
    }
}
