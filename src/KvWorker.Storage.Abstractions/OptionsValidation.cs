using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KvWorker.Storage;

public static class OptionsValidation
{
    /// <summary>
    /// Validates the options when the host starts, reporting every failure that
    /// <paramref name="failures"/> lists; each failure starts with the full key it is about.
    /// </summary>
    public static OptionsBuilder<T> ValidateEach<T>(this OptionsBuilder<T> builder, Func<T, IEnumerable<string>> failures)
        where T : class
    {
        builder.Services.AddSingleton<IValidateOptions<T>>(new FailureListValidator<T>(builder.Name, failures));
        return builder.ValidateOnStart();
    }

    /// <inheritdoc cref="ValidateEach{T}"/>
    public static OptionsBuilder<T> ValidateEach<T, TDependency>(
        this OptionsBuilder<T> builder, Func<T, TDependency, IEnumerable<string>> failures)
        where T : class where TDependency : notnull
    {
        builder.Services.AddSingleton<IValidateOptions<T>>(provider =>
            new FailureListValidator<T>(builder.Name, options => failures(options, provider.GetRequiredService<TDependency>())));
        return builder.ValidateOnStart();
    }

    private sealed class FailureListValidator<T>(string name, Func<T, IEnumerable<string>> failures) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? optionsName, T options)
        {
            if (optionsName != name) return ValidateOptionsResult.Skip;
            var found = failures(options).ToList();
            return found.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(found);
        }
    }
}
