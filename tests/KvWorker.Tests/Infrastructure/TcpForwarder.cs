using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace KvWorker.Tests.Infrastructure;

/// <summary>
/// A local port that forwards every connection to another server: a stand-in for one node
/// of a cluster. Disposing it cuts every connection through it, as a node going away does.
/// </summary>
public sealed class TcpForwarder : IDisposable
{
    private readonly TcpListener _listener;
    private readonly ConcurrentBag<TcpClient> _sockets = [];
    private readonly CancellationTokenSource _stop = new();
    private int _connections;

    /// <param name="listenPort">The local port to listen on; 0 for any free one.</param>
    public TcpForwarder(string host, int port, int listenPort = 0)
    {
        _listener = new TcpListener(IPAddress.Loopback, listenPort);
        _listener.Start();
        _ = AcceptAsync(host, port);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections made through this port so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    private async Task AcceptAsync(string host, int port)
    {
        while (!_stop.IsCancellationRequested)
        {
            var inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            var outbound = new TcpClient();
            await outbound.ConnectAsync(host, port, _stop.Token);
            _sockets.Add(inbound);
            _sockets.Add(outbound);
            Interlocked.Increment(ref _connections);
            _ = PumpAsync(inbound, outbound);
            _ = PumpAsync(outbound, inbound);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream(), _stop.Token);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // One side closed or the forwarder stopped: the connection ends either way.
        }
        from.Dispose();
        to.Dispose();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var socket in _sockets) socket.Dispose();
        _stop.Dispose();
    }
}
