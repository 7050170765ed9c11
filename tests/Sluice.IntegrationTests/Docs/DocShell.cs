using System.Diagnostics;
using System.Globalization;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Docs;

/// <summary>
/// One bash session in a fresh folder, as a reader's terminal: what a command exports stays for the next, <c>./sluice</c>
/// is the built CLI, the data folder is the default <c>./sluice-data</c>. A command that keeps running until Ctrl-C
/// (<c>run</c> without <c>--once</c>, <c>demo</c>, <c>mock-api</c>) runs as in a second terminal: in the background,
/// the next command going on once it has said "Ctrl-C stops"; at the end it is stopped and must exit 0.
/// </summary>
internal sealed class DocShell : IAsyncDisposable
{
    private const string Done = "__sluice_docs_done__";
    private const string Ready = "Ctrl-C stops";
    private readonly TempFolder _folder = new("sluice-docs");
    private readonly Process _bash;
    private readonly List<(int Pid, string Command, string Log)> _background = [];
    private int _count;

    public DocShell(IReadOnlyDictionary<string, string> environment)
    {
        File.WriteAllText(Path.Combine(Work, "sluice"), $"#!/bin/sh\nexec dotnet '{TestPaths.CliAssembly}' \"$@\"\n");
        if (!OperatingSystem.IsWindows()) { File.SetUnixFileMode(Path.Combine(Work, "sluice"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute); }
        Directory.CreateDirectory(Logs);
        var info = new ProcessStartInfo("bash", ["--noprofile", "--norc", "-s"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = Work,
        };
        info.Environment.Remove("SLUICE_DATA");
        info.Environment["SLUICE_RECIPES"] = TestPaths.Recipes;
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (k, v) in environment) { info.Environment[k] = v; }
        _bash = Process.Start(info)!;
    }

    public string Work => _folder.Path;

    private string Logs => Path.Combine(_folder.Path, ".docs-test");

    /// <summary>Whether a command keeps running until Ctrl-C.</summary>
    public static bool IsLongRunning(string command)
    {
        var c = StripComment(command).TrimEnd().TrimEnd('&').Trim();
        return c.EndsWith('&')
            || (c.StartsWith("./sluice run ", StringComparison.Ordinal) && !c.Contains("--once", StringComparison.Ordinal))
            || c == "./sluice demo" || c.StartsWith("./sluice demo ", StringComparison.Ordinal)
            || c.StartsWith("./sluice mock-api", StringComparison.Ordinal);
    }

    /// <summary>Runs one command to its end: its exit code, stdout and stderr.</summary>
    public async Task<(int Code, string Out, string Err)> RunAsync(string command, TimeSpan timeout)
    {
        var n = ++_count;
        var stdout = Path.Combine(Logs, $"{n}.out");
        var stderr = Path.Combine(Logs, $"{n}.err");
        // A newline before the closing brace, so that a trailing comment does not swallow it.
        var code = await SendAsync($"{{ {command}\n}} </dev/null >'{stdout}' 2>'{stderr}'; echo \"{Done} $?\"", timeout, command);
        return (int.Parse(code, CultureInfo.InvariantCulture), await File.ReadAllTextAsync(stdout), await File.ReadAllTextAsync(stderr));
    }

    /// <summary>Starts a long-running command in the background and waits until it says it runs.</summary>
    public async Task StartAsync(string command, TimeSpan timeout)
    {
        var log = Path.Combine(Logs, $"{++_count}.log");
        // A simple command, not a group: $! is then the program itself, which the stop signal must reach.
        var line = StripComment(command).TrimEnd().TrimEnd('&').TrimEnd();
        var pid = int.Parse(await SendAsync($"{line} </dev/null >'{log}' 2>&1 & echo \"{Done} $!\"", timeout, command), CultureInfo.InvariantCulture);
        _background.Add((pid, command, log));
        var deadline = DateTime.UtcNow + timeout;
        while (!(File.Exists(log) && (await File.ReadAllTextAsync(log)).Contains(Ready, StringComparison.Ordinal)))
        {
            if (!Alive(pid)) { throw new InvalidOperationException($"'{command}' ended before it said '{Ready}':\n{await File.ReadAllTextAsync(log)}"); }
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"'{command}' did not say '{Ready}' within {timeout.TotalSeconds:0} s:\n{await File.ReadAllTextAsync(log)}"); }
            await Task.Delay(100);
        }
    }

    /// <summary>Stops the background commands as Ctrl-C would (SIGTERM does the same; a background job ignores SIGINT), newest first: each must exit 0.</summary>
    public Task<List<string>> StopAllAsync(TimeSpan timeout) => StopAsync(_ => true, timeout);

    /// <summary>
    /// Stops the background <c>run</c> and <c>demo</c> commands, as a reader does before starting another (the run lock
    /// of a recipe allows one); helpers such as <c>mock-api</c> keep running.
    /// </summary>
    public Task<List<string>> StopRunsAsync(TimeSpan timeout) => StopAsync(c => IsRunOrDemo(c), timeout);

    public static bool IsRunOrDemo(string command) =>
        command.StartsWith("./sluice run ", StringComparison.Ordinal) || command == "./sluice demo" || command.StartsWith("./sluice demo ", StringComparison.Ordinal);

    private async Task<List<string>> StopAsync(Func<string, bool> which, TimeSpan timeout)
    {
        var problems = new List<string>();
        foreach (var (pid, command, log) in Enumerable.Reverse(_background).Where(b => which(b.Command)).ToList())
        {
            var code = await SendAsync($"kill -TERM {pid}; wait {pid}; echo \"{Done} $?\"", timeout, $"stopping {command}");
            if (code != "0") { problems.Add($"'{command}' exited {code} when stopped:\n{Tail(await File.ReadAllTextAsync(log))}"); }
            _background.RemoveAll(b => b.Pid == pid);
        }

        return problems;
    }

    public static string Tail(string text, int lines = 30) => string.Join('\n', text.Split('\n').TakeLast(lines));

    private async Task<string> SendAsync(string script, TimeSpan timeout, string what)
    {
        await _bash.StandardInput.WriteLineAsync(script);
        await _bash.StandardInput.FlushAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var line = await _bash.StandardOutput.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException($"the shell ended during '{what}'");
                if (line.StartsWith(Done, StringComparison.Ordinal)) { return line[(Done.Length + 1)..].Trim(); }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"'{what}' did not finish within {timeout.TotalSeconds:0} s");
        }
    }

    private static bool Alive(int pid) => Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2].Equals("Z", StringComparison.Ordinal);

    /// <summary>The command without its trailing <c># comment</c> (a <c>#</c> after a blank, outside quotes).</summary>
    private static string StripComment(string command)
    {
        var quote = '\0';
        for (var i = 0; i < command.Length; i++)
        {
            var c = command[i];
            if (quote != '\0') { if (c == quote) { quote = '\0'; } continue; }
            if (c is '\'' or '"') { quote = c; }
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(command[i - 1]))) { return command[..i]; }
        }

        return command;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (pid, _, _) in _background)
        {
            try { Process.GetProcessById(pid).Kill(entireProcessTree: true); }
            catch (ArgumentException) { /* gone already */ }
        }

        _bash.StandardInput.Close();
        if (!_bash.WaitForExit(5000)) { _bash.Kill(entireProcessTree: true); }
        _bash.Dispose();
        await Task.CompletedTask;
        _folder.Dispose();
    }
}
