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
        : parse.Errors[0].Message;
    await Console.Error.WriteLineAsync($"kv: {message}");
    await Console.Error.WriteLineAsync("Run 'kv --help' or 'kv <command> --help' for usage.");
    return ExitCodes.Usage;
}
return await parse.InvokeAsync();
