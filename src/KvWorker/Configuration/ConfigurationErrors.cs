using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using KvWorker.Health;
using Microsoft.Extensions.Configuration.CommandLine;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Options;
using NetEscapades.Configuration.Yaml;

namespace KvWorker.Configuration;

/// <summary>
/// Turns an invalid configuration into short messages that name each setting as the
/// user wrote it: the environment variable, the config.yaml key, the appsettings key or
/// the command-line argument that supplied the value, with the key it configures.
/// </summary>
public static partial class ConfigurationErrors
{
    /// <summary>The messages for a configuration failure at start-up, or null when <paramref name="exception"/> is not one.</summary>
    public static IReadOnlyList<string>? Explain(Exception exception, IConfiguration? configuration) => exception switch
    {
        // A file that does not parse (appsettings.json, config.yaml): which one, and where the parser stopped.
        InvalidDataException { InnerException: FormatException } unreadable =>
            [$"{unreadable.Message.TrimEnd('.')}: {ParseError(unreadable.GetBaseException())}"],
        // The health port taken by another process, or not one this user may listen on; the Prometheus
        // exporter, which listens on the same port for /metrics, reports it inside an exception of its own.
        HttpListenerException refused => [HealthPortRefused(refused, configuration)],
        InvalidOperationException { InnerException: HttpListenerException refused } => [HealthPortRefused(refused, configuration)],
        OptionsValidationException invalid => [.. invalid.Failures.Select(failure => Rewrite(failure, configuration))],
        InvalidOperationException unconvertible when NotConvertible().Match(unconvertible.Message) is { Success: true } match =>
            [$"{AsWritten(match.Groups["key"].Value, configuration)} must be {Expected(match.Groups["type"].Value)}, not '{match.Groups["value"].Value}'"],
        AggregateException aggregate when aggregate.InnerExceptions.Select(inner => Explain(inner, configuration)).ToList() is var explained
            && explained.All(messages => messages is not null) => [.. explained.SelectMany(messages => messages!)],
        _ => null,
    };

    /// <summary>Health:Port as written, with the listener's reason.</summary>
    private static string HealthPortRefused(HttpListenerException refused, IConfiguration? configuration)
    {
        var key = $"{HealthOptions.Section}:{nameof(HealthOptions.Port)}";
        return $"{AsWritten(key, configuration)} is {configuration?[key]}, but the worker cannot listen on it: {refused.Message}";
    }

    /// <summary>The parser's reason; YAML's says where only in its properties (JSON's message has the line).</summary>
    private static string ParseError(Exception parser) => parser is YamlDotNet.Core.YamlException yaml
        ? $"line {yaml.Start.Line}, column {yaml.Start.Column}: {yaml.Message}"
        : parser.Message;

    /// <summary>A failure that starts with the full key of its setting, with that key as written.</summary>
    private static string Rewrite(string failure, IConfiguration? configuration)
    {
        var space = failure.IndexOf(' ', StringComparison.Ordinal);
        return space < 0 ? failure : AsWritten(failure[..space], configuration) + failure[space..];
    }

    /// <summary>
    /// Where the value of <paramref name="key"/> came from: the configuration source that
    /// supplied it (the last one that has it wins), as the user would look for it.
    /// </summary>
    public static string AsWritten(string key, IConfiguration? configuration)
    {
        if (configuration is not IConfigurationRoot root) return key;
        foreach (var provider in root.Providers.Reverse())
        {
            if (!provider.TryGet(key, out _)) continue;
            return provider switch
            {
                AtlasEnvironment.Provider when AtlasVariable(key) is { } variable => $"environment variable {variable} ({key})",
                EnvironmentVariablesConfigurationProvider => $"environment variable {key.Replace(":", "__", StringComparison.Ordinal)}",
                YamlConfigurationProvider yaml => $"{yaml.Source.Path} key {key.Replace(':', '.')}",
                JsonConfigurationProvider json => $"{json.Source.Path} key {key}",
                CommandLineConfigurationProvider => $"command-line argument --{key}",
                _ => key,
            };
        }
        return key;
    }

    private static string? AtlasVariable(string key) =>
        AtlasEnvironment.KeysByVariable.FirstOrDefault(pair => string.Equals(pair.Value, key, StringComparison.OrdinalIgnoreCase)).Key;

    private static string Expected(string type) => type switch
    {
        "System.Int32" or "System.Int64" or "System.UInt16" => "a whole number",
        "System.Double" => "a number",
        "System.Boolean" => "true or false",
        _ when Type.GetType(type) is { IsEnum: true } choices => "one of " + string.Join(", ", Enum.GetNames(choices).Select(name => name.ToLowerInvariant())),
        _ => "a value of type " + type.Replace("System.", "", StringComparison.Ordinal).ToLower(CultureInfo.InvariantCulture),
    };

    [GeneratedRegex("Failed to convert configuration value '(?<value>.*)' at '(?<key>[^']+)' to type '(?<type>[^']+)'", RegexOptions.Singleline)]
    private static partial Regex NotConvertible();
}
