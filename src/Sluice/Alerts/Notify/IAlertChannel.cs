namespace Sluice.Alerts.Notify;

/// <summary>A way out for alert notices. A delivery that fails throws <see cref="AlertDeliveryException"/>.</summary>
public interface IAlertChannel : IAsyncDisposable
{
    /// <summary><c>webhook</c> or <c>email</c>: the notice's channel in the store.</summary>
    string Name { get; }

    /// <summary>Where notices go, for messages (a URL, addresses).</summary>
    string Target { get; }

    /// <summary>Delivers one notice (retrying what its own policy allows); returns the attempts it took.</summary>
    Task<int> DeliverAsync(AlertNotice notice, CancellationToken ct);
}

/// <summary>A notice not delivered: <see cref="Permanent"/> when trying again cannot help (a 4xx, a refused address).</summary>
public sealed class AlertDeliveryException(string message, int attempts, bool permanent) : Exception(message)
{
    public int Attempts => attempts;

    public bool Permanent => permanent;
}
