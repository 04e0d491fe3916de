using System.IO.Enumeration;
using KvWorker.Configuration;
using KvWorker.Contracts;
using KvWorker.Storage;
using Microsoft.Extensions.Options;

namespace KvWorker.Pipeline;

/// <summary>
/// Decides which persona a request acts as and whether that persona may run it.
/// The caller is the request's AMQP <c>user_id</c>, which RabbitMQ refuses unless
/// it is the publishing connection's user; the body can only choose among the
/// personas configured for that identity, so naming a persona grants nothing.
/// The worker's own broker user may send <c>kv_purge</c> (its purge schedule does).
/// </summary>
public sealed class PersonaPolicy(IOptions<KvStoreOptions> options, IOptions<RabbitMqOptions> rabbitMq, ILogger<PersonaPolicy> logger)
{
    /// <summary>The persona the request acts as (null for the worker's own purge); throws <c>AccessDeniedError</c> (and logs it) otherwise.</summary>
    public string? Authorize(KvRequestContext request, string? ns)
    {
        if (request.Operation == KvOperations.Purge && request.CallerIdentity == rabbitMq.Value.Username)
            return null;
        try
        {
            return Check(request.CallerIdentity, request.Request.Persona, ns, request.Operation.RequiredFlag);
        }
        catch (KvStoreException denied)
        {
            logger.LogWarning("Denied {Operation} on namespace {Namespace} to identity {Identity}: {Reason}",
                request.Operation.Name, ns ?? "(all)", request.CallerIdentity ?? "(no user_id)", denied.Message);
            throw;
        }
    }

    private string Check(string? identity, string? requestedPersona, string? ns, string flag)
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
        if (settings.Namespaces.Count > 0 && ns is null)
            throw Denied($"persona '{persona}' may only use the namespaces it is granted; name one");
        if (settings.Namespaces.Count > 0 && !settings.Namespaces.Any(pattern => FileSystemName.MatchesSimpleExpression(pattern, ns, ignoreCase: false)))
            throw Denied($"persona '{persona}' may not use namespace '{ns}'");
        return persona;
    }

    private static KvStoreException Denied(string message) => new(KvErrorCodes.AccessDeniedError, message);
}
