using System.Net.Sockets;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Sluice.Core;

namespace Sluice.Connectors.Smtp;

/// <summary>What became of one message.</summary>
public enum SendStatus
{
    /// <summary>The server answered 250 to the message: it has it.</summary>
    Sent,

    /// <summary>A temporary refusal (4xx) or a connection problem before the message was transmitted: try again later.</summary>
    Transient,

    /// <summary>A permanent refusal (5xx, an address the server will not take): trying again cannot help.</summary>
    Permanent,

    /// <summary>The message was being transmitted when the connection failed: the server may or may not have it.</summary>
    InDoubt,

    /// <summary><c>beforeData</c> declined (the reminder is no longer this run's): nothing was transmitted.</summary>
    Declined,
}

public readonly record struct SendResult(SendStatus Status, string Detail);

/// <summary>The server could not be reached (or refused the session) after every connection attempt.</summary>
public sealed class SmtpUnavailableException(string message, Exception inner) : SluiceException(message, inner);

/// <summary>
/// Sends mail over one SMTP connection (MailKit), reconnecting as needed. A connection failure is retried with a
/// doubling pause (<see cref="SmtpOptions.ConnectAttempts"/>, <see cref="SmtpOptions.Backoff"/>) on the injected
/// clock. Each message's outcome is classified so the caller can keep its send-once promise: <c>beforeData</c> runs
/// once the server has accepted the recipient and before the message itself is transmitted, which is where the caller
/// records that the message is being sent.
/// </summary>
public sealed class SmtpSender(SmtpOptions options, TimeProvider time) : IAsyncDisposable
{
    private HookedClient? _client;

    public SmtpOptions Options => options;

    public async Task<SendResult> SendAsync(MimeMessage message, Func<bool> beforeData, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(message);
        var client = await ConnectedAsync(ct).ConfigureAwait(false);
        var recipient = message.To.Mailboxes.FirstOrDefault()?.Address ?? "";
        var committed = false;
        client.BeforeData = () =>
        {
            if (committed) { return; }
            if (!beforeData()) { throw new DeclinedException(); }
            committed = true;
        };
        try
        {
            var answer = await client.SendAsync(message, ct).ConfigureAwait(false);
            return new SendResult(SendStatus.Sent, Redact($"250 {answer}".Trim(), recipient));
        }
        catch (DeclinedException)
        {
            await DropAsync().ConfigureAwait(false);
            return new SendResult(SendStatus.Declined, "the reminder was claimed by another run");
        }
        catch (SmtpCommandException e)
        {
            var code = (int)e.StatusCode;
            var detail = Redact($"{code} {e.Message}", recipient);
            if (!client.IsConnected) { await DropAsync().ConfigureAwait(false); }
            return code >= 500 ? new SendResult(SendStatus.Permanent, detail) : new SendResult(SendStatus.Transient, detail);
        }
        catch (Exception e) when (e is IOException or SocketException or TimeoutException or SmtpProtocolException or ServiceNotConnectedException or OperationCanceledException)
        {
            await DropAsync().ConfigureAwait(false);
            var detail = $"connection to {options.Describe()} failed: {e.Message}";
            if (e is OperationCanceledException && ct.IsCancellationRequested && !committed) { throw; }
            return new SendResult(committed ? SendStatus.InDoubt : SendStatus.Transient, detail);
        }
    }

    /// <summary>Connects (and authenticates) if not connected, retrying with backoff; throws <see cref="SmtpUnavailableException"/> when every attempt failed.</summary>
    public async Task EnsureConnectedAsync(CancellationToken ct) => await ConnectedAsync(ct).ConfigureAwait(false);

    private async Task<HookedClient> ConnectedAsync(CancellationToken ct)
    {
        if (_client is { IsConnected: true })
        {
            return _client;
        }

        await DropAsync().ConfigureAwait(false);
        var pause = options.Backoff;
        for (var attempt = 1; ; attempt++)
        {
            var client = new HookedClient { Timeout = (int)Math.Min(int.MaxValue, options.Timeout.TotalMilliseconds) };
            try
            {
                await client.ConnectAsync(options.Host, options.Port, Secure(options.Tls), ct).ConfigureAwait(false);
                if (options.User is { Length: > 0 } user)
                {
                    await client.AuthenticateAsync(user, options.Password ?? "", ct).ConfigureAwait(false);
                }

                _client = client;
                return client;
            }
            catch (Exception e) when (e is IOException or SocketException or TimeoutException or SmtpProtocolException or SmtpCommandException or SslHandshakeException or AuthenticationException)
            {
                client.Dispose();
                if (attempt >= options.ConnectAttempts)
                {
                    throw new SmtpUnavailableException($"SMTP server {options.Describe()} unavailable after {attempt} attempt(s): {e.Message}", e);
                }

                await Task.Delay(pause, time, ct).ConfigureAwait(false);
                pause *= 2;
            }
        }
    }

    private async Task DropAsync()
    {
        var client = _client;
        _client = null;
        if (client is null)
        {
            return;
        }

        try
        {
            if (client.IsConnected)
            {
                using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await client.DisconnectAsync(true, quick.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or SmtpProtocolException or OperationCanceledException or ServiceNotConnectedException)
        {
            // The connection is being thrown away because it failed; a failing QUIT changes nothing.
        }
        finally
        {
            client.Dispose();
        }
    }

    private static SecureSocketOptions Secure(SmtpTls tls) => tls switch
    {
        SmtpTls.None => SecureSocketOptions.None,
        SmtpTls.StartTls => SecureSocketOptions.StartTls,
        SmtpTls.Tls => SecureSocketOptions.SslOnConnect,
        _ => SecureSocketOptions.Auto,
    };

    /// <summary>Server answers often quote the address; dead letters and logs keep the answer but not the address.</summary>
    private static string Redact(string text, string address) =>
        address.Length == 0 ? text : text.Replace(address, "<recipient>", StringComparison.OrdinalIgnoreCase);

    public async ValueTask DisposeAsync() => await DropAsync().ConfigureAwait(false);

    private sealed class DeclinedException : Exception
    {
    }

    /// <summary>MailKit's client with a hook between "recipient accepted" and the transmission of the message.</summary>
    private sealed class HookedClient : SmtpClient
    {
        public Action? BeforeData { get; set; }

        protected override void OnRecipientAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response)
        {
            base.OnRecipientAccepted(message, mailbox, response);
            BeforeData?.Invoke();
        }
    }
}
