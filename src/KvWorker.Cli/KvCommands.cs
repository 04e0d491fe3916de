using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using KvWorker.Contracts;
using RabbitMQ.Client.Exceptions;

namespace KvWorker.Cli;

/// <summary>The <c>kv</c> command tree: one command per operation, plus usage and events.</summary>
public static class KvCommands
{
    public const string UrlVariable = "KV_RABBITMQ_URL";
    public const string DefaultUrl = "amqp://guest:guest@localhost:5672/";

    private static readonly Option<Uri?> Url = new("--url")
    {
        Description = $"RabbitMQ URI, virtual host as the path [default: ${UrlVariable}, else {DefaultUrl}]",
        Recursive = true,
        CustomParser = result => ParseUrl(result.Tokens[0].Value, result),
    };

    private static readonly Option<bool> JsonOutput = new("--json")
    {
        Description = "Print the worker's reply as one line of JSON, for scripts",
        Recursive = true,
    };

    private static readonly Option<string?> Persona = new("--persona")
    {
        Description = "Act as this persona (sent as the request's persona)",
        Recursive = true,
    };

    private static readonly Option<string?> Provider = new("--provider")
    {
        Description = "Storage provider to use instead of the configured default",
        Recursive = true,
    };

    private static readonly Option<double> Timeout = new("--timeout")
    {
        Description = "Seconds to wait for the worker's reply",
        Recursive = true,
        DefaultValueFactory = _ => 30,
        Validators =
        {
            result =>
            {
                if (result.GetValueOrDefault<double>() is not > 0) result.AddError("--timeout must be a positive number of seconds");
            },
        },
    };

    private static readonly Argument<string> Namespace = new("namespace") { Description = "The namespace, e.g. a persona's name" };
    private static readonly Argument<string> Key = new("key") { Description = "The key within the namespace" };

    public static RootCommand Build()
    {
        var root = new RootCommand(
            "kv: the KvWorker key-value store from a terminal.\n\n" +
            "Exit codes: 0 ok, 1 the worker answered with an error, 2 invalid command line,\n" +
            "3 RabbitMQ unreachable or no worker answered, 4 key not found (get).")
        {
            Options = { Url, JsonOutput, Persona, Provider, Timeout },
        };
        root.Subcommands.Add(Get());
        root.Subcommands.Add(Set());
        root.Subcommands.Add(Delete());
        root.Subcommands.Add(Increment());
        root.Subcommands.Add(Usage());
        root.Subcommands.Add(EventFollower.Command(JsonOutput));
        return root;
    }

    private static Command Get()
    {
        var command = new Command("get", "Read a key: prints its value as JSON (remaining TTL on stderr)") { Arguments = { Namespace, Key } };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, "kv_get", () => new KvGet
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Key = parse.GetRequiredValue(Key),
            Persona = parse.GetValue(Persona),
            Provider = parse.GetValue(Provider),
        }, reply =>
        {
            var result = reply.Deserialize<KvGetResult>()!;
            if (!result.Found)
            {
                Console.Error.WriteLine($"kv: {result.Namespace}/{result.Key} not found");
                return ExitCodes.NotFound;
            }
            Console.WriteLine(Json.Format(result.Value!.Value, indented: true));
            if (result.TtlSeconds is { } ttl) Console.Error.WriteLine($"ttl: {Seconds(ttl)} remaining");
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    private static Command Set()
    {
        var value = new Argument<string>("value") { Description = "The value as JSON (quote text: '\"hello\"'); - reads it from stdin" };
        var ttl = new Option<double?>("--ttl") { Description = "Seconds until the entry expires (default: never)" };
        var command = new Command("set", "Write a JSON value, optionally with a TTL") { Arguments = { Namespace, Key, value }, Options = { ttl } };
        command.SetAction((parse, cancellationToken) =>
        {
            var text = parse.GetRequiredValue(value);
            return CallAsync(parse, "kv_set", () => new KvSet
            {
                Namespace = parse.GetRequiredValue(Namespace),
                Key = parse.GetRequiredValue(Key),
                Value = Json.ParseValue(text == "-" ? Console.In.ReadToEnd() : text),
                TtlSeconds = parse.GetValue(ttl),
                Persona = parse.GetValue(Persona),
                Provider = parse.GetValue(Provider),
            }, reply =>
            {
                var result = reply.Deserialize<KvSetResult>()!;
                Console.WriteLine(result.TtlSeconds is { } seconds
                    ? $"set {result.Namespace}/{result.Key} (expires in {Seconds(seconds)})"
                    : $"set {result.Namespace}/{result.Key}");
                return ExitCodes.Ok;
            }, cancellationToken);
        });
        return command;
    }

    private static Command Delete()
    {
        var command = new Command("delete", "Remove a key") { Arguments = { Namespace, Key } };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, "kv_delete", () => new KvDelete
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Key = parse.GetRequiredValue(Key),
            Persona = parse.GetValue(Persona),
            Provider = parse.GetValue(Provider),
        }, reply =>
        {
            var result = reply.Deserialize<KvDeleteResult>()!;
            Console.WriteLine(result.Deleted
                ? $"deleted {result.Namespace}/{result.Key}"
                : $"{result.Namespace}/{result.Key} not found: nothing deleted");
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    private static Command Increment()
    {
        var by = new Option<long>("--by") { Description = "Amount to add (negative subtracts)", DefaultValueFactory = _ => 1 };
        var initial = new Option<long>("--initial") { Description = "Starting value when the key is missing or expired", DefaultValueFactory = _ => 0 };
        var ttl = new Option<double?>("--ttl") { Description = "Seconds until the counter expires (default: keep its TTL)" };
        var command = new Command("incr", "Add to an integer counter atomically; prints the new value")
        {
            Arguments = { Namespace, Key },
            Options = { by, initial, ttl },
        };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, "kv_increment", () => new KvIncrement
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Key = parse.GetRequiredValue(Key),
            Delta = parse.GetValue(by),
            InitialValue = parse.GetValue(initial),
            TtlSeconds = parse.GetValue(ttl),
            Persona = parse.GetValue(Persona),
            Provider = parse.GetValue(Provider),
        }, reply =>
        {
            Console.WriteLine(Json.Format(reply.Deserialize<KvIncrementResult>()!.Value, indented: false));
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    private static Command Usage()
    {
        var command = new Command("usage", "Show a namespace's bytes and entries against its quota") { Arguments = { Namespace } };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, "kv_usage", () => new KvUsage
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Persona = parse.GetValue(Persona),
            Provider = parse.GetValue(Provider),
        }, reply =>
        {
            var usage = reply.Deserialize<KvUsageResult>()!;
            var percent = usage.QuotaBytes > 0 ? 100.0 * usage.UsedBytes / usage.QuotaBytes : 0;
            Console.WriteLine($"namespace     {usage.Namespace}");
            Console.WriteLine($"entries       {usage.Entries.ToString("N0", CultureInfo.InvariantCulture)}");
            Console.WriteLine($"used          {Bytes(usage.UsedBytes)} of {Bytes(usage.QuotaBytes)} ({percent.ToString("0.#", CultureInfo.InvariantCulture)}%)");
            if (usage.GlobalQuotaBytes is { } global) Console.WriteLine($"global quota  {Bytes(global)}");
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    /// <summary>
    /// Connects, sends one request and prints the reply: as it came with --json,
    /// else through <paramref name="printResult"/>. An error reply goes to stderr
    /// (and to stdout too with --json, so scripts can read its code).
    /// </summary>
    private static Task<int> CallAsync(
        ParseResult parse, string queue, Func<object> request, Func<JsonElement, int> printResult, CancellationToken cancellationToken) =>
        RunAsync(async () =>
        {
            var body = request();
            await using var client = await KvClient.ConnectAsync(BrokerUrl(parse), cancellationToken);
            var reply = await client.CallAsync(queue, body, TimeSpan.FromSeconds(parse.GetValue(Timeout)), cancellationToken);
            var asJson = parse.GetValue(JsonOutput);
            if (reply.TryGetProperty("error", out _))
            {
                var error = reply.Deserialize<KvError>()!.Error;
                if (asJson) Console.WriteLine(Json.Format(reply, indented: false));
                await Console.Error.WriteLineAsync($"kv: {error.Code}: {error.Message}");
                return ExitCodes.WorkerError;
            }
            if (!asJson) return printResult(reply);
            Console.WriteLine(Json.Format(reply, indented: false));
            return reply.TryGetProperty("found", out var found) && found.ValueKind == JsonValueKind.False ? ExitCodes.NotFound : ExitCodes.Ok;
        });

    /// <summary>Runs a command's work, turning the CLI's own failures into a message and an exit code.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> work)
    {
        try
        {
            return await work();
        }
        catch (CliException ex)
        {
            await Console.Error.WriteLineAsync($"kv: {ex.Message}");
            return ex.ExitCode;
        }
        catch (OperationInterruptedException ex)
        {
            // The broker closed the connection or channel: unknown virtual host, no permission, ...
            await Console.Error.WriteLineAsync($"kv: RabbitMQ refused: {ex.ShutdownReason?.ReplyText ?? ex.Message}");
            return ExitCodes.Unreachable;
        }
    }

    /// <summary>--url, else $KV_RABBITMQ_URL, else the local default.</summary>
    public static Uri BrokerUrl(ParseResult parse)
    {
        if (parse.GetValue(Url) is { } url) return url;
        var text = Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } configured ? configured : DefaultUrl;
        return Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "amqp" or "amqps"
            ? uri
            : throw new CliException(ExitCodes.Usage, $"{UrlVariable} must be an AMQP URI such as {DefaultUrl}, not '{text}'");
    }

    private static Uri ParseUrl(string text, System.CommandLine.Parsing.ArgumentResult result)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "amqp" or "amqps") return uri;
        result.AddError($"--url must be an AMQP URI such as {DefaultUrl}, not '{text}'");
        return null!;
    }

    private static string Seconds(double seconds) => seconds.ToString("0.#", CultureInfo.InvariantCulture) + " s";

    private static string Bytes(long bytes) => bytes.ToString("N0", CultureInfo.InvariantCulture) + " bytes";
}
