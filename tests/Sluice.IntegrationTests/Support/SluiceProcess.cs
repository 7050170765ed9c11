using System.Diagnostics;
using System.Text;

namespace Sluice.IntegrationTests.Support;

/// <summary>Runs the real CLI as a child process (<c>dotnet sluice.dll ...</c>), for tests that need a separate process: kills, concurrency, exit codes.</summary>
internal sealed class SluiceProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private SluiceProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_out) { _out.AppendLine(e.Data); } } };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_err) { _err.AppendLine(e.Data); } } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    /// <summary>
    /// True once the process ended and its output was read to the end: a process that exits can be seen as exited
    /// before the reader threads received its last lines (a crash point's farewell among them), so the drain comes first.
    /// </summary>
    public bool HasExited
    {
        get
        {
            if (!_process.HasExited) { return false; }
            _process.WaitForExit();
            return true;
        }
    }

    public string Stdout { get { lock (_out) { return _out.ToString(); } } }

    public string Stderr { get { lock (_err) { return _err.ToString(); } } }

    public static SluiceProcess Start(string dataDir, params string[] args) => Start(dataDir, null, args);

    public static SluiceProcess Start(string dataDir, IDictionary<string, string>? env, params string[] args) => StartIn(dataDir, dataDir, env, args);

    /// <summary>Starts it in <paramref name="workingDirectory"/> with <c>--data <paramref name="dataDir"/></c> (which need not exist yet).</summary>
    public static SluiceProcess StartIn(string workingDirectory, string dataDir, IDictionary<string, string>? env, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        info.ArgumentList.Add(TestPaths.CliAssembly);
        foreach (var a in args) { info.ArgumentList.Add(a); }
        // run and demo open the management port (default 7070): tests run side by side, so each takes a free port unless it names one.
        if (args is ["run" or "demo", ..] && !args.Contains("--port"))
        {
            info.ArgumentList.Add("--port");
            info.ArgumentList.Add("0");
        }

        info.ArgumentList.Add("--data");
        info.ArgumentList.Add(dataDir);
        info.Environment["SLUICE_RECIPES"] = TestPaths.Recipes;
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        if (env is not null)
        {
            foreach (var (k, v) in env) { info.Environment[k] = v; }
        }

        return new SluiceProcess(Process.Start(info)!);
    }

    /// <summary>Runs to completion and returns (exit code, stdout, stderr).</summary>
    public static async Task<(int Code, string Out, string Err)> RunAsync(string dataDir, params string[] args)
    {
        using var p = Start(dataDir, args);
        var code = await p.WaitAsync(TimeSpan.FromMinutes(5));
        return (code, p.Stdout, p.Stderr);
    }

    /// <summary>
    /// The one bound on a stopped <c>sluice</c>'s exit, for every test that stops one: the host's own stop ends within
    /// 25 s (RecipeHost.StopTimeout plus CloseMargin), which a machine at load 100 can stretch several times over.
    /// </summary>
    public static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(120);

    /// <summary>Ctrl-C (or <paramref name="signal"/>), then its exit code, within <see cref="ExitBound"/>.</summary>
    public async Task<int> StopAsync(int signal = 2)
    {
        Signal(signal);
        return await WaitAsync(ExitBound);
    }

    public async Task<int> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"sluice did not exit within {timeout.TotalSeconds:0} s.\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Waits until stdout or stderr contains the text.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Stdout.Contains(text, StringComparison.Ordinal) && !Stderr.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited) { throw new InvalidOperationException($"sluice exited ({_process.ExitCode}) before printing '{text}'.\nstdout:\n{Stdout}\nstderr:\n{Stderr}"); }
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"'{text}' not printed within {timeout.TotalSeconds:0} s.\nstdout:\n{Stdout}\nstderr:\n{Stderr}"); }
            await Task.Delay(50);
        }
    }

    /// <summary>Waits until stdout or stderr contains the text, or the process has exited (whatever it printed).</summary>
    public async Task WaitForOutputOrExitAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_process.HasExited && !Stdout.Contains(text, StringComparison.Ordinal) && !Stderr.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"'{text}' not printed within {timeout.TotalSeconds:0} s.\nstdout:\n{Stdout}\nstderr:\n{Stderr}"); }
            await Task.Delay(50);
        }
    }

    /// <summary>SIGKILL: the process gets no chance to clean up.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    /// <summary>SIGINT, as Ctrl-C sends it.</summary>
    public void Interrupt() => Signal(2);

    public void Signal(int signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Peak resident set size so far (VmHWM), in MiB, or -1 once the process is gone.</summary>
    public double PeakRssMiB()
    {
        try
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? -1 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
