using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace TunnelMesh.Net.BenchCommon;

/// <summary>A bad command line; an empty message means "print the usage" (--help).</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// What every benchmark tool's Main does first: parse the options (a usage error prints the reason
/// and the usage and exits 2, --help exits 0), then run under one token that is cancelled by the
/// tool's time limit or by SIGINT/SIGTERM, so every run stops by itself.
/// </summary>
internal sealed class BenchRun : IDisposable
{
    private readonly CancellationTokenSource _timeout;
    private readonly CancellationTokenSource _interrupted = new();
    private readonly CancellationTokenSource _either;
    private readonly PosixSignalRegistration _sigint;
    private readonly PosixSignalRegistration _sigterm;

    public BenchRun(TimeSpan limit)
    {
        _timeout = new CancellationTokenSource(limit);
        _either = CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token, _interrupted.Token);
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
    }

    /// <summary>Cancelled at the time limit or on a signal.</summary>
    public CancellationToken Token => _either.Token;

    public bool TimedOut => _timeout.IsCancellationRequested;

    public bool Interrupted => _interrupted.IsCancellationRequested;

    /// <summary>Parses the command line; false with the exit code when the tool should stop (usage printed).</summary>
    public static bool TryParse<T>(string tool, string usage, Func<T> parse, [NotNullWhen(true)] out T? options, out int exitCode)
        where T : class
    {
        try
        {
            options = parse();
            exitCode = 0;
            return true;
        }
        catch (UsageException ex)
        {
            if (ex.Message.Length > 0)
            {
                Console.Error.WriteLine($"{tool}: {ex.Message}");
            }

            Console.Error.WriteLine(usage);
            options = null;
            exitCode = ex.Message.Length > 0 ? 2 : 0;
            return false;
        }
    }

    private void Interrupt(PosixSignalContext context)
    {
        context.Cancel = true;
        _interrupted.Cancel();
    }

    public void Dispose()
    {
        _sigint.Dispose();
        _sigterm.Dispose();
        _either.Dispose();
        _timeout.Dispose();
        _interrupted.Dispose();
    }
}
