using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Connectors.Http.Ingest;

namespace Sluice.Bench;

/// <summary>
/// The reference of <c>sluice bench ingest</c>: the least a durable HTTP ingest endpoint can do on this machine. A
/// minimal Kestrel endpoint that reads the same bodies and appends each, as is, to a file with the same group-commit
/// fsync (the same <see cref="LandingLog"/>), then answers 202. No token, no parsing, no validation, no pipeline.
/// </summary>
public static class ReferenceIngestServer
{
    public static async Task RunAsync(string folder, int port, CancellationToken ct)
    {
        var log = LandingLog.Open(folder, 256L << 20, 256L << 20, NullLogger.Instance);
        await using (log.ConfigureAwait(false))
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                k.Limits.MaxRequestBodySize = 32L << 20;
                k.Listen(IPAddress.Loopback, port);
            });
            var app = builder.Build();
            app.MapPost("/v1/streams/{stream}/events", async (HttpContext http) =>
            {
                var length = (int)(http.Request.ContentLength ?? 0);
                var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1024));
                try
                {
                    var read = 0;
                    int n;
                    while ((n = await http.Request.Body.ReadAsync(buffer.AsMemory(read), http.RequestAborted).ConfigureAwait(false)) > 0)
                    {
                        read += n;
                        if (read == buffer.Length)
                        {
                            var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                            buffer.AsSpan(0, read).CopyTo(bigger);
                            ArrayPool<byte>.Shared.Return(buffer);
                            buffer = bigger;
                        }
                    }

                    var body = buffer.AsMemory(0, read);
                    long end;
                    while ((end = log.Append(LandingRecord.Size(0, read), span =>
                    {
                        LandingRecord.Write(span, 0, 0, default, body.Span);
                        return LandingRecord.Size(0, read);
                    })) < 0)
                    {
                        await Task.Delay(1).ConfigureAwait(false);
                    }

                    await log.WaitDurableAsync(end).ConfigureAwait(false);
                    http.Response.StatusCode = StatusCodes.Status202Accepted;
                    await http.Response.Body.WriteAsync("{}"u8.ToArray(), http.RequestAborted).ConfigureAwait(false);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            });
            await app.StartAsync(ct).ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped by the benchmark.
            }

            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }
}
