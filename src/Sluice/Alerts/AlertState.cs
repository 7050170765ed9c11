namespace Sluice.Alerts;

/// <summary>An alert's state: <c>ok</c> or <c>firing</c> since a time, and when it was first checked on this data folder.</summary>
public sealed record AlertState(bool Firing, DateTimeOffset Since, string Message, DateTimeOffset WatchedSince)
{
    public string Name => Firing ? AlertStates.Firing : AlertStates.Ok;
}

public static class AlertStates
{
    public const string Ok = "ok";
    public const string Firing = "firing";
    public const string Resolved = "resolved";
}

/// <summary>One message to send about one change of an alert, to one channel (webhook, email).</summary>
public sealed record AlertNotice(
    long Id, string Recipe, string Alert, string Kind, string Severity, string Subject, string Event, DateTimeOffset At,
    DateTimeOffset? FiringSince, string Message, string Channel, int Attempts)
{
    /// <summary>The same for every channel and every attempt of one change: a receiver can drop a repeat (a mail or POST whose answer was lost).</summary>
    public string Key => $"{Recipe}/{Alert}/{Event}/{At.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffffffZ}";
}
