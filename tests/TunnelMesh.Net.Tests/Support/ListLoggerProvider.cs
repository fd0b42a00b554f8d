using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>Collects log lines in memory, for failure messages.</summary>
public sealed class ListLoggerProvider(string prefix = "") : ILoggerProvider
{
    private readonly List<string> _lines = new();

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return _lines.ToList();
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new ListLogger(this, prefix + categoryName.Split('.').Last());

    public void Dispose()
    {
    }

    private sealed class ListLogger(ListLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._lines)
            {
                owner._lines.Add($"{DateTime.UtcNow:ss.fff} {category}: {formatter(state, exception)}");
            }
        }
    }
}

/// <summary>Sends another logger factory's lines to a <see cref="ListLoggerProvider"/> with a prefix.</summary>
public sealed class ForwardingProvider(ListLoggerProvider target, string prefix) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => target.CreateLogger(prefix + categoryName);

    public void Dispose()
    {
    }
}
