using System.IO.Enumeration;
using KvWorker.Configuration;
using KvWorker.Contracts;
using KvWorker.Storage;
using MassTransit;
using Microsoft.Extensions.Options;

namespace KvWorker.Messaging;

/// <summary>
/// Decides which persona a request acts as and whether that persona may run it.
/// The caller is the request's AMQP <c>user_id</c>, which RabbitMQ refuses unless
/// it is the publishing connection's user; the body can only choose among the
/// personas configured for that identity, so naming a persona grants nothing.
/// </summary>
public sealed class PersonaPolicy(IOptions<KvStoreOptions> options, ILogger<PersonaPolicy> logger)
{
    /// <summary>The persona the request acts as; throws <c>AccessDeniedError</c> (and logs it) otherwise.</summary>
    public string Authorize(ConsumeContext context, string ns, string? requestedPersona)
    {
        var (operation, flag) = Requirement(context);
        var identity = CallerIdentity(context.ReceiveContext);
        try
        {
            return Check(identity, requestedPersona, ns, flag);
        }
        catch (KvStoreException denied)
        {
            logger.LogWarning("Denied {Operation} on namespace {Namespace} to identity {Identity}: {Reason}",
                operation, ns, identity ?? "(no user_id)", denied.Message);
            throw;
        }
    }

    /// <summary>The broker-validated AMQP user_id, or null when the request has none.</summary>
    public static string? CallerIdentity(ReceiveContext context)
    {
        var userId = AmqpReply.Properties(context)?.UserId;
        return string.IsNullOrEmpty(userId) ? null : userId;
    }

    private string Check(string? identity, string? requestedPersona, string ns, string flag)
    {
        var kvStore = options.Value;
        var caller = identity is null ? "a request without user_id" : $"identity '{identity}'";
        var grant = (identity is null ? kvStore.Anonymous : kvStore.Identities.GetValueOrDefault(identity))
            ?? throw Denied($"{caller} is not granted any persona");
        var persona = requestedPersona ?? grant.DefaultPersona
            ?? throw Denied($"{caller} has no default persona; name one in \"persona\"");
        if (!grant.Personas.Contains(persona, StringComparer.Ordinal))
            throw Denied($"{caller} may not act as persona '{persona}'");
        var settings = kvStore.Personas.GetValueOrDefault(persona)
            ?? throw Denied($"persona '{persona}' is not configured");
        if (!settings.Flags.Contains(flag, StringComparer.Ordinal))
            throw Denied($"persona '{persona}' lacks {flag}");
        if (settings.Namespaces.Count > 0 && !settings.Namespaces.Any(pattern => FileSystemName.MatchesSimpleExpression(pattern, ns, ignoreCase: false)))
            throw Denied($"persona '{persona}' may not use namespace '{ns}'");
        return persona;
    }

    private static KvStoreException Denied(string message) => new(KvErrorCodes.AccessDeniedError, message);

    /// <summary>Reads need the access flag, writes the write flag; the operation is known from the message type.</summary>
    private static (string Operation, string Flag) Requirement(ConsumeContext context) => context switch
    {
        ConsumeContext<KvGet> => (KvQueues.Get, KvStoreManifest.ReadFlag),
        ConsumeContext<KvUsage> => (KvQueues.Usage, KvStoreManifest.ReadFlag),
        ConsumeContext<KvSet> => (KvQueues.Set, KvStoreManifest.WriteFlag),
        ConsumeContext<KvDelete> => (KvQueues.Delete, KvStoreManifest.WriteFlag),
        ConsumeContext<KvIncrement> => (KvQueues.Increment, KvStoreManifest.WriteFlag),
        _ => throw new InvalidOperationException($"no policy flag is defined for {context.GetType().Name}"),
    };
}
