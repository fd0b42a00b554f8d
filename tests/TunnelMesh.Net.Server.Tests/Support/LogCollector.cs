using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.Tests.Support;

/// <summary>
/// Keeps every log line in memory: time, level, category, the formatted message, the structured
/// values and the exception text. Tests look for secrets in them; the end-to-end tests write them
/// out as a debugging aid.
/// </summary>
public sealed class LogCollector : ILoggerProvider
{
    private readonly List<string> _lines = [];

    /// <summary>A copy of the lines so far.</summary>
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

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogCollector owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string values = state is IEnumerable<KeyValuePair<string, object?>> kv ? string.Join(";", kv.Select(p => $"{p.Key}={p.Value}")) : "";
            string line = $"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)} [{values}] {exception}";
            lock (owner._lines)
            {
                owner._lines.Add(line);
            }
        }
    }
}
