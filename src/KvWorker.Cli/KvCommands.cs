using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using KvWorker.Client;
using KvWorker.Contracts;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace KvWorker.Cli;

/// <summary>The <c>kv</c> command tree: one command per operation, plus events.</summary>
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

    // The options of the commands that call the worker. Each of those commands has them,
    // and so does the root, so they may also come before the command (kv --json get ...).
    private static readonly Option<bool> JsonOutput = new("--json")
    {
        Description = "Print the worker's reply as one line of JSON, error replies included, for scripts",
    };

    private static readonly Option<string?> Persona = new("--persona")
    {
        Description = "Act as this persona (sent as the request's persona)",
    };

    private static readonly Option<string?> Provider = new("--provider")
    {
        Description = "Storage provider to use instead of the configured default",
    };

    private static readonly Option<double> Timeout = ParsedOption<double>(
        "--timeout", "Seconds to wait for the connection to RabbitMQ, then for the worker's reply; a request not taken by then is dropped, unapplied",
        $"a number of seconds from 0.001 to {KvCallOptions.MaxTimeout.TotalSeconds:0}",
        // At least a millisecond: a shorter time-out rounds to none, which the client refuses.
        (string text, out double seconds) => (seconds = FiniteNumber(text) ?? 0) >= 0.001 && seconds <= KvCallOptions.MaxTimeout.TotalSeconds,
        defaultValue: KvCallOptions.DefaultTimeout.TotalSeconds);

    private static readonly Argument<string> Namespace = NonEmpty(new Argument<string>("namespace") { Description = "The namespace, e.g. a persona's name" });
    private static readonly Argument<string> Key = NonEmpty(new Argument<string>("key") { Description = "The key within the namespace" });

    /// <summary>Refuses an empty value on the command line (exit 2), which the worker would refuse anyway.</summary>
    private static Argument<T> NonEmpty<T>(Argument<T> argument)
    {
        argument.Validators.Add(result =>
        {
            if (result.Tokens.Any(token => token.Value.Length == 0)) result.AddError($"{argument.Name} must not be empty");
        });
        return argument;
    }

    public static RootCommand Build()
    {
        var root = WithCallOptions(new RootCommand(
            "kv: the KvWorker key-value store from a terminal.\n\n" +
            "Exit codes: 0 ok, 1 the worker answered with an error, 2 invalid command line,\n" +
            "3 RabbitMQ unreachable or refusing, or no worker answered (or something else did), 4 key not found (get, touch).")
        {
            Options = { Url },
        });
        root.Subcommands.Add(Get());
        root.Subcommands.Add(Set());
        root.Subcommands.Add(Delete());
        root.Subcommands.Add(Increment());
        root.Subcommands.Add(List());
        root.Subcommands.Add(Touch());
        root.Subcommands.Add(GetMany());
        root.Subcommands.Add(Usage());
        root.Subcommands.Add(Purge());
        root.Subcommands.Add(EventFollower.Command());
        return root;
    }

    /// <summary>
    /// <c>kv events</c> sends no request: --json before it means its own --json, and a request's
    /// options before it are refused (exit 2) rather than ignored.
    /// </summary>
    public static bool EventsAsJson(ParseResult parse)
    {
        if (new Option[] { Persona, Provider, Timeout }.FirstOrDefault(option => parse.GetResult(option) is { Implicit: false }) is { } given)
            throw new CliException(ExitCodes.Usage, $"events does not take {given.Name}");
        return parse.GetValue(JsonOutput);
    }

    /// <summary>Gives a command that sends one request to the worker the options that go with it.</summary>
    private static T WithCallOptions<T>(T command) where T : Command
    {
        foreach (var option in new Option[] { JsonOutput, Persona, Provider, Timeout }) command.Options.Add(option);
        return command;
    }

    private static Command Get()
    {
        var command = new Command("get", "Read a key: prints its value as JSON (its remaining TTL and version on stderr)") { Arguments = { Namespace, Key } };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, KvOperations.Get, () => new KvGet
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Key = parse.GetRequiredValue(Key),
        }, result =>
        {
            if (!result.Found)
            {
                Console.Error.WriteLine($"kv: {result.Namespace}/{result.Key} not found");
                return ExitCodes.NotFound;
            }
            // A stored JSON null comes back as no value at all.
            Console.WriteLine(result.Value is { } value ? Json.Format(value, indented: true) : "null");
            if (result.TtlSeconds is { } ttl) Console.Error.WriteLine($"ttl: {Seconds(ttl)} remaining");
            Console.Error.WriteLine($"version: {result.Version}");
            return ExitCodes.Ok;
        }, cancellationToken));
        return WithCallOptions(command);
    }

    private static Command Set()
    {
        var value = new Argument<string>("value") { Description = "The value as JSON (quote text: '\"hello\"'); - reads it from stdin" };
        var ttl = TtlOption("Seconds until the entry expires (default: never)");
        var ifVersion = IfVersionOption("Write only if the key's live entry has this version; 0: only if the key is absent (create only)");
        var command = new Command("set", "Write a JSON value, optionally with a TTL; prints the entry's new version")
        {
            Arguments = { Namespace, Key, value },
            Options = { ttl, ifVersion },
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var text = parse.GetRequiredValue(value);
            return CallAsync(parse, KvOperations.Set, () => new KvSet
            {
                Namespace = parse.GetRequiredValue(Namespace),
                Key = parse.GetRequiredValue(Key),
                Value = text == "-" ? Json.ParseValue(ReadStandardInput()) : Json.ParseValue(text),
                TtlSeconds = parse.GetValue(ttl),
                IfVersion = parse.GetValue(ifVersion),
            }, result =>
            {
                Console.WriteLine(result.TtlSeconds is { } seconds
                    ? $"set {result.Namespace}/{result.Key}, version {result.Version} (expires in {Seconds(seconds)})"
                    : $"set {result.Namespace}/{result.Key}, version {result.Version}");
                return ExitCodes.Ok;
            }, cancellationToken);
        });
        return WithCallOptions(command);
    }

    private static Command Delete()
    {
        var ifVersion = IfVersionOption("Delete only if the key's live entry has this version");
        var command = new Command("delete", "Remove a key") { Arguments = { Namespace, Key }, Options = { ifVersion } };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, KvOperations.Delete, () => new KvDelete
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Key = parse.GetRequiredValue(Key),
            IfVersion = parse.GetValue(ifVersion),
        }, result =>
        {
            Console.WriteLine(result.Deleted
                ? $"deleted {result.Namespace}/{result.Key}"
                : $"{result.Namespace}/{result.Key} not found: nothing deleted");
            return ExitCodes.Ok;
        }, cancellationToken));
        return WithCallOptions(command);
    }

    private static Command Increment()
    {
        var by = IntegerOption("--by", "Amount to add (negative subtracts)", defaultValue: 1);
        var initial = IntegerOption("--initial", "Value of a missing or expired counter before the increment: it is created at --initial + --by", defaultValue: 0);
        var ttl = TtlOption("Seconds until the counter expires (default: keep its TTL)");
        var command = new Command("incr", "Add to an integer counter atomically; prints the new value")
        {
            Arguments = { Namespace, Key },
            Options = { by, initial, ttl },
        };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, KvOperations.Increment, () => new KvIncrement
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Key = parse.GetRequiredValue(Key),
            Delta = parse.GetValue(by),
            InitialValue = parse.GetValue(initial),
            TtlSeconds = parse.GetValue(ttl),
        }, result =>
        {
            Console.WriteLine(Json.Format(result.Value, indented: false));
            return ExitCodes.Ok;
        }, cancellationToken));
        return WithCallOptions(command);
    }

    private static Command List()
    {
        var prefix = new Option<string?>("--prefix") { Description = "Only keys that start with this text" };
        var limit = ParsedOption<int?>("--limit", "Keys per page, 1 to 1000 (default 100)", "a whole number from 1 to 1000",
            (string text, out int? value) => (value = int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null) is >= 1 and <= 1000);
        var cursor = new Option<string?>("--cursor") { Description = "The next_cursor a previous page printed" };
        var command = new Command("list", "List a namespace's live keys in key byte order, a page at a time (key, bytes, version, TTL)")
        {
            Arguments = { Namespace },
            Options = { prefix, limit, cursor },
        };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, KvOperations.List, () => new KvList
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Prefix = parse.GetValue(prefix),
            Limit = parse.GetValue(limit),
            Cursor = parse.GetValue(cursor),
        }, page =>
        {
            foreach (var key in page.Keys)
                Console.WriteLine($"{key.Key}\t{Bytes(key.SizeBytes)}\tversion {key.Version}" + (key.TtlSeconds is { } ttl ? $"\texpires in {Seconds(ttl)}" : ""));
            if (page.NextCursor is { } next) Console.Error.WriteLine("more: " + NextPageCommand(parse, page.Namespace, next, prefix, limit));
            return ExitCodes.Ok;
        }, cancellationToken));
        return WithCallOptions(command);
    }

    /// <summary>The command line of the next page: this one's namespace, prefix, page size, persona and provider, the next cursor.</summary>
    private static string NextPageCommand(ParseResult parse, string ns, string cursor, Option<string?> prefix, Option<int?> limit)
    {
        var words = new List<string> { "kv", "list", ShellWord(ns) };
        void Add(string option, object? value)
        {
            if (value is not null) words.AddRange([option, ShellWord(Convert.ToString(value, CultureInfo.InvariantCulture)!)]);
        }
        Add("--prefix", parse.GetValue(prefix));
        Add("--limit", parse.GetValue(limit));
        Add("--persona", parse.GetValue(Persona));
        Add("--provider", parse.GetValue(Provider));
        Add("--cursor", cursor);
        return string.Join(' ', words);
    }

    /// <summary>The text as one word of a POSIX shell: as it is when that is safe, else single-quoted.</summary>
    private static string ShellWord(string text) =>
        text.Length > 0 && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or ':' or '@' or '=' or '+' or ',')
            ? text
            : "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static Command Touch()
    {
        var ttl = TtlOption("Seconds until the entry expires, from now");
        var persistent = new Option<bool>("--persistent") { Description = "Make the entry persistent instead" };
        var command = new Command("touch", "Set a new TTL on a live entry without rewriting its value (--ttl SECONDS or --persistent)")
        {
            Arguments = { Namespace, Key },
            Options = { ttl, persistent },
        };
        command.Validators.Add(result =>
        {
            if ((result.GetValue(ttl) is null) == !result.GetValue(persistent))
                result.AddError(result.GetValue(persistent) ? "kv touch takes --ttl SECONDS or --persistent, not both" : "kv touch needs either --ttl SECONDS or --persistent");
        });
        command.SetAction((parse, cancellationToken) => CallAsync(parse, KvOperations.Touch, () => new KvTouch
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Key = parse.GetRequiredValue(Key),
            TtlSeconds = parse.GetValue(ttl),
        }, result =>
        {
            if (!result.Found)
            {
                Console.Error.WriteLine($"kv: {result.Namespace}/{result.Key} not found: nothing touched");
                return ExitCodes.NotFound;
            }
            Console.WriteLine(result.TtlSeconds is { } seconds
                ? $"touched {result.Namespace}/{result.Key}, version {result.Version} (expires in {Seconds(seconds)})"
                : $"touched {result.Namespace}/{result.Key}, version {result.Version} (persistent)");
            return ExitCodes.Ok;
        }, cancellationToken));
        return WithCallOptions(command);
    }

    private static Command GetMany()
    {
        var keys = new Argument<string[]>("keys") { Description = "Up to 100 keys", Arity = ArgumentArity.OneOrMore };
        var command = new Command("mget", "Read several keys of a namespace in one snapshot: a line per key, in order: the key, a tab, its value as JSON or (not found)")
        {
            Arguments = { Namespace, keys },
        };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, KvOperations.GetMany, () => new KvGetMany
        {
            Namespace = parse.GetRequiredValue(Namespace),
            Keys = parse.GetRequiredValue(keys),
        }, result =>
        {
            foreach (var entry in result.Entries)
                Console.WriteLine($"{entry.Key}\t" + (entry.Found ? (entry.Value is { } value ? Json.Format(value, indented: false) : "null") : "(not found)"));
            return ExitCodes.Ok;
        }, cancellationToken));
        return WithCallOptions(command);
    }

    private static Command Usage()
    {
        var command = new Command("usage", "Show a namespace's bytes and entries against its quota") { Arguments = { Namespace } };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, KvOperations.Usage, () => new KvUsage
        {
            Namespace = parse.GetRequiredValue(Namespace),
        }, usage =>
        {
            var percent = usage.QuotaBytes > 0 ? 100.0 * usage.UsedBytes / usage.QuotaBytes : 0;
            Console.WriteLine($"namespace     {usage.Namespace}");
            Console.WriteLine($"entries       {Count(usage.Entries)}");
            Console.WriteLine($"used          {Bytes(usage.UsedBytes)} of {Bytes(usage.QuotaBytes)} ({percent.ToString("0.#", CultureInfo.InvariantCulture)}%)");
            if (usage.GlobalQuotaBytes is { } global) Console.WriteLine($"global quota  {Bytes(global)}");
            return ExitCodes.Ok;
        }, cancellationToken));
        return WithCallOptions(command);
    }

    private static Command Purge()
    {
        var ns = NonEmpty(new Argument<string?>("namespace") { Description = "Only this namespace (default: every namespace)", Arity = ArgumentArity.ZeroOrOne });
        var command = new Command("purge", "Remove expired entries now, of one namespace or of all (the worker also does so on a schedule)")
        {
            Arguments = { ns },
        };
        command.SetAction((parse, cancellationToken) => CallAsync(parse, KvOperations.Purge, () => new PurgeExpiredEntries
        {
            Namespace = parse.GetValue(ns),
        }, result =>
        {
            foreach (var line in PurgeSummary(result)) Console.WriteLine(line);
            return ExitCodes.Ok;
        }, cancellationToken));
        return WithCallOptions(command);
    }

    /// <summary>What <c>kv purge</c> prints: the totals, then a line per namespace that lost entries.</summary>
    public static IEnumerable<string> PurgeSummary(KvPurgeResult result)
    {
        if (!result.Ran)
        {
            yield return "another purge was running, so this one did nothing: try again once it has finished";
            yield break;
        }
        yield return $"purged {Count(result.Entries, "expired entry", "expired entries")} ({Bytes(result.BytesFreed)}) " +
                     $"from {Count(result.Namespaces.Count, "namespace", "namespaces")}; " +
                     $"forgot {Count(result.RequestsForgotten, "request identity", "request identities")} past their retention" +
                     (result.Complete ? "" : "; stopped at the time budget with more left, which the next run removes");
        foreach (var expired in result.Namespaces)
            yield return $"  {expired.Namespace}: {Count(expired.Count, "entry", "entries")}, {Bytes(expired.BytesFreed)}";
    }

    /// <summary>
    /// Connects, sends one request and prints the reply: as it came with --json,
    /// else through <paramref name="printResult"/>. An error reply goes to stderr
    /// (and to stdout too with --json, so scripts can read its code).
    /// </summary>
    private static Task<int> CallAsync<TRequest, TResult>(
        ParseResult parse, KvOperation<TRequest, TResult> operation, Func<TRequest> request, Func<TResult, int> printResult,
        CancellationToken cancellationToken)
        where TRequest : class, IKvRequest
        where TResult : class =>
        RunAsync(async () =>
        {
            var body = request();
            var timeout = TimeSpan.FromSeconds(parse.GetValue(Timeout));
            var options = new KvCallOptions { Timeout = timeout };
            var asJson = parse.GetValue(JsonOutput);
            // Connecting has the same bound: with RabbitMQ down or hung, kv --timeout 2 gives up after
            // about 2 s, not after the client's default of 30.
            await using var client = await ConnectAsync(parse, cancellationToken,
                new KvClientOptions { Persona = parse.GetValue(Persona), Provider = parse.GetValue(Provider), ConnectTimeout = timeout });
            try
            {
                if (!asJson) return printResult(await client.CallAsync(operation, body, options, cancellationToken));
                var reply = await client.CallJsonAsync(operation, body, options, cancellationToken);
                Console.WriteLine(Json.Format(reply, indented: false));
                return reply.TryGetProperty("found", out var found) && found.ValueKind == JsonValueKind.False ? ExitCodes.NotFound : ExitCodes.Ok;
            }
            catch (KeyValueStoreException error)
            {
                if (asJson) Console.WriteLine(Json.Format(JsonSerializer.SerializeToElement(new { error = error.Error }), indented: false));
                await Console.Error.WriteLineAsync($"kv: {error.Code}: {error.Message}");
                return ExitCodes.WorkerError;
            }
        });

    public static Task<KvClient> ConnectAsync(ParseResult parse, CancellationToken cancellationToken, KvClientOptions? options = null) =>
        KvClient.ConnectAsync(BrokerUrl(parse), (options ?? new KvClientOptions()) with { ClientName = "kv" }, cancellationToken);

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
        catch (Exception ex) when (ex is KvBrokerException or KvTimeoutException or KvInvalidReplyException)
        {
            // Unreachable, login refused, no such queue, no reply in time, a reply no worker sends: each message says which.
            await Console.Error.WriteLineAsync($"kv: {ex.Message}");
            return ExitCodes.Unreachable;
        }
        catch (OperationInterruptedException ex)
        {
            // The broker closed the channel of kv events: no permission on an exchange, ...
            await Console.Error.WriteLineAsync($"kv: RabbitMQ refused: {ex.ShutdownReason?.ReplyText ?? ex.Message}");
            return ExitCodes.Unreachable;
        }
    }

    /// <summary>Standard input as bytes, so JSON's own reading judges them: bytes that are not UTF-8 are refused, not replaced.</summary>
    private static byte[] ReadStandardInput()
    {
        using var input = Console.OpenStandardInput();
        using var bytes = new MemoryStream();
        input.CopyTo(bytes);
        return bytes.ToArray();
    }

    /// <summary>--url, else $KV_RABBITMQ_URL, else the local default.</summary>
    private static Uri BrokerUrl(ParseResult parse)
    {
        if (parse.GetValue(Url) is { } url) return url;
        var text = Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } configured ? configured : DefaultUrl;
        return AmqpUri(text, out var problem) ?? throw new CliException(ExitCodes.Usage, NotAnAmqpUri(UrlVariable, text, problem));
    }

    private static Uri ParseUrl(string text, ArgumentResult result)
    {
        if (AmqpUri(text, out var problem) is { } uri) return uri;
        result.AddError(NotAnAmqpUri("--url", text, problem));
        return null!;
    }

    /// <summary>
    /// The URI when RabbitMQ's client takes it, else null, with the client's reason when it has one:
    /// it has rules of its own (the virtual host is one path segment), which would otherwise fail at connect time.
    /// </summary>
    private static Uri? AmqpUri(string text, out string? problem)
    {
        problem = null;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps")) return null;
        try
        {
            _ = new ConnectionFactory { Uri = uri };
            return uri;
        }
        catch (ArgumentException ex)
        {
            problem = ex.Message;
            return null;
        }
    }

    private static string NotAnAmqpUri(string setting, string text, string? problem) =>
        $"{setting} must be an AMQP URI such as {DefaultUrl}, not '{text}'" + (problem is null ? "" : $" ({problem})");

    public delegate bool TryParse<T>(string text, out T value);

    /// <summary>
    /// An option whose value the CLI parses itself, so a bad value is reported as
    /// "--ttl must be a number of seconds, not 'abc'" rather than with a .NET type name.
    /// </summary>
    public static Option<T> ParsedOption<T>(string name, string description, string mustBe, TryParse<T> tryParse, T? defaultValue = default)
    {
        var option = new Option<T>(name)
        {
            Description = description,
            CustomParser = result =>
            {
                var text = result.Tokens[0].Value;
                if (tryParse(text, out var value)) return value;
                result.AddError($"{name} must be {mustBe}, not '{text}'");
                return default;
            },
        };
        if (defaultValue is not null) option.DefaultValueFactory = _ => defaultValue;
        return option;
    }

    private static Option<double?> TtlOption(string description) => ParsedOption<double?>(
        "--ttl", description, "a positive number of seconds", (string text, out double? seconds) => (seconds = FiniteNumber(text)) > 0);

    private static Option<long?> IfVersionOption(string description) => ParsedOption<long?>(
        "--if-version", description, "a version (0 or more)",
        (string text, out long? version) => (version = long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null) is not null);

    private static Option<long> IntegerOption(string name, string description, long defaultValue) => ParsedOption<long>(
        name, description, "a 64-bit integer",
        (string text, out long value) => long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value),
        defaultValue);

    /// <summary>A finite number in invariant notation (1.5, not 1,5), else null; the worker judges a TTL's range.</summary>
    private static double? FiniteNumber(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number) ? number : null;

    // One decimal is enough for people, but a TTL that rounds to "0 s" would read as already expired.
    private static string Seconds(double seconds) =>
        seconds is > 0 and < 0.05 ? "under 0.1 s" : seconds.ToString("0.#", CultureInfo.InvariantCulture) + " s";

    private static string Count(long count) => count.ToString("N0", CultureInfo.InvariantCulture);

    private static string Count(long count, string one, string many) => $"{Count(count)} {(count == 1 ? one : many)}";

    private static string Bytes(long bytes) => Count(bytes, "byte", "bytes");
}
