using System.CommandLine;
using System.CommandLine.Help;
using KvWorker.Cli;

var root = KvCommands.Build();
// No response files: a namespace or key may start with '@' (@alice), and is sent as it is typed.
var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
{
    // One line: the first error says enough, and an unknown command also makes "command not provided".
    var message = parse.CommandResult.Command == root && parse.UnmatchedTokens is [var word, ..] && !word.StartsWith('-')
        ? $"unknown command '{word}'"
        : MissingArguments(parse) ?? parse.Errors[0].Message;
    await Console.Error.WriteLineAsync($"kv: {message}");
    await Console.Error.WriteLineAsync("Run 'kv --help' or 'kv <command> --help' for usage.");
    return ExitCodes.Usage;
}
return await parse.InvokeAsync();

// System.CommandLine says only "Required argument missing for command: 'get'": name what is missing, and the usage.
static string? MissingArguments(ParseResult parse)
{
    var command = parse.CommandResult.Command;
    var missing = command.Arguments
        .Where(argument => argument.Arity.MinimumNumberOfValues > 0 && parse.GetResult(argument) is null or { Tokens.Count: 0 })
        .Select(argument => $"<{argument.Name}>")
        .ToList();
    if (missing.Count == 0) return null;
    var usage = string.Join(" ", command.Arguments.Select(argument => argument.Arity.MinimumNumberOfValues > 0 ? $"<{argument.Name}>" : $"[<{argument.Name}>]"));
    var names = missing.Count == 1 ? missing[0] : $"{string.Join(", ", missing[..^1])} and {missing[^1]}";
    return $"{names} missing: kv {command.Name} {usage}";
}
